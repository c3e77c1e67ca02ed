// TLS around a protocol server's client connections (imapd, pop3d): the
// certificate a daemon may run without, the bufferevent of a connection
// just accepted (plain, or TLS from the first byte: RFC 8314 implicit TLS),
// the switch after STARTTLS/STLS, and the check that a final reply has left.
//
// Log lines:
//   warning: no TLS certificate (/etc/tern/cert.pem): STARTTLS is not offered
//   warning: cannot start TLS with unknown[192.0.2.1]: <OpenSSL errors>
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <string_view>

#include "lib/core/result.hpp"
#include "lib/tls/context.hpp"

struct bufferevent;
struct event_base;

namespace tern::tls {

// The context when cert_file exists.  Without it: an error when
// implicit_mode (the setting that asks for implicit TLS, as
// "imapd_mode=imaps") is given, else no context and a warning that the
// `starttls` command is not offered.  cert_key names cert_file's setting.
Result<Context> optional_server_context(const std::string& cert_key, const std::string& cert_file,
                                        const std::string& key_file, const std::string& implicit_mode,
                                        const char* starttls);

// The bufferevent of an accepted connection (fd owned from now on): TLS
// when implicit_tls (none without a context), else plain.  nullptr, with
// the fd closed, when it cannot be set up.
bufferevent* server_connection(event_base* base, int fd, bool implicit_tls, SSL_CTX* ctx);

// After the client's STARTTLS (or POP3 STLS) was answered: drops whatever
// it pipelined in the clear behind the command (it must not run inside the
// TLS session: the STARTTLS command injection attacks, CVE-2011-0411 and
// kin) and starts the handshake on top of plain.  nullptr after a warning
// naming peer when TLS cannot start (plain is then still the caller's).
bufferevent* start_tls_after_command(event_base* base, bufferevent* plain, SSL_CTX* ctx, const std::string& peer);

// True once every layer (compression, TLS, socket) has handed its output
// to the kernel: a final reply has left.
bool output_sent(bufferevent* bev);

// Sending a reply at once, from inside a command that keeps the event loop
// busy for a while after it (a first SELECT's answer, before its index is
// written): libevent would only send it when the loop runs again, and its
// TLS bufferevent has no flush.  Possible on a plain or TLS connection
// (not under COMPRESS) with nothing queued before and room in the socket.
bool may_send_now(bufferevent* bev);
enum class SendNow {
    Sent,     // handed to the kernel (on plain TCP, what did not fit goes when the loop runs)
    NotSent,  // nothing happened: send it the usual way
    Broken,   // TLS failed midway: the connection is unusable
};
SendNow send_now(bufferevent* bev, std::string_view data);

}  // namespace tern::tls
