// TLS for tern's servers and clients: OpenSSL 3 contexts with sane defaults
// (TLS 1.2 and newer, forward-secret AEAD ciphers, no renegotiation, no
// compression), session descriptions for Received: headers and logs, and the
// libevent glue that turns a plain bufferevent into a TLS one (STARTTLS,
// RFC 3207) or accepts TLS on a fresh socket (smtps, RFC 8314).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "lib/core/result.hpp"

struct bufferevent;
struct event_base;

namespace tern::tls {

struct ContextDeleter {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using Context = std::unique_ptr<SSL_CTX, ContextDeleter>;

// A server context from PEM files; checks that the key matches the
// certificate.  Errors name the file and OpenSSL's reason.
Result<Context> server_context(const std::string& cert_file, const std::string& key_file);
// A client context (no certificate; verification is the caller's choice).
Result<Context> client_context();

// "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)", as Postfix
// writes it in Received: headers and its "Anonymous TLS connection" logs.
std::string describe(const SSL* ssl);
// "TLSv1.3"
std::string protocol(const SSL* ssl);

// The last OpenSSL error queue entries as text (and clears the queue).
std::string openssl_errors();

// Wraps `plain` (whose ownership passes to the result: freeing the result
// frees it) in a server-side TLS filter: STARTTLS.  nullptr on failure, in
// which case `plain` is still owned by the caller.
bufferevent* start_server_tls(event_base* base, bufferevent* plain, SSL_CTX* ctx);
// A TLS server bufferevent on a just-accepted socket (implicit TLS); the
// socket is closed with the bufferevent.  nullptr on failure (fd untouched).
bufferevent* accept_tls(event_base* base, int fd, SSL_CTX* ctx);
// OpenSSL errors a TLS bufferevent collected (libevent keeps them per
// bufferevent, the thread's error queue is empty by the time callbacks run);
// "" when there are none (e.g. the peer just closed the connection).
std::string bufferevent_errors(bufferevent* bev);
// The SSL of a TLS bufferevent, or nullptr for a plain one.
SSL* ssl_of(bufferevent* bev);

}  // namespace tern::tls
