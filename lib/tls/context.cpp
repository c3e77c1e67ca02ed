// OpenSSL contexts and libevent TLS bufferevents (see context.hpp).
#include "lib/tls/context.hpp"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

namespace tern::tls {
namespace {

// TLS 1.2 suites: ECDHE/DHE key exchange with AEAD only (RFC 7525 4.2);
// TLS 1.3 suites are OpenSSL's defaults, which are all fine.
constexpr const char* kCiphers12 =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256";

Status common_setup(SSL_CTX* ctx) {
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        return Error{"cannot set minimum TLS version: " + openssl_errors()};
    if (!SSL_CTX_set_cipher_list(ctx, kCiphers12)) return Error{"cannot set TLS ciphers: " + openssl_errors()};
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return {};
}

}  // namespace

std::string openssl_errors() {
    std::string out;
    unsigned long e;
    char buf[256];
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown error" : out;
}

Result<Context> server_context(const std::string& cert_file, const std::string& key_file) {
    Context ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) return Error{"SSL_CTX_new: " + openssl_errors()};
    if (Status s = common_setup(ctx.get()); !s) return s.error();
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1)
        return Error{"cannot load certificate " + cert_file + ": " + openssl_errors()};
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        return Error{"cannot load private key " + key_file + ": " + openssl_errors()};
    if (SSL_CTX_check_private_key(ctx.get()) != 1)
        return Error{"private key " + key_file + " does not match certificate " + cert_file};
    SSL_CTX_set_dh_auto(ctx.get(), 1);
    static const unsigned char sid[] = "tern";
    SSL_CTX_set_session_id_context(ctx.get(), sid, sizeof sid - 1);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
    return ctx;
}

Result<Context> client_context() {
    Context ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) return Error{"SSL_CTX_new: " + openssl_errors()};
    if (Status s = common_setup(ctx.get()); !s) return s.error();
    SSL_CTX_set_default_verify_paths(ctx.get());
    return ctx;
}

std::string protocol(const SSL* ssl) { return ssl ? SSL_get_version(ssl) : ""; }

std::string describe(const SSL* ssl) {
    if (!ssl) return "";
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
    if (!cipher) return protocol(ssl);
    int alg_bits = 0;
    int bits = SSL_CIPHER_get_bits(cipher, &alg_bits);
    return protocol(ssl) + " with cipher " + SSL_CIPHER_get_name(cipher) + " (" + std::to_string(bits) + "/" +
           std::to_string(alg_bits) + " bits)";
}

namespace {

// A server-side TLS bufferevent that make(ssl) builds on a new SSL; the
// SSL is freed when make fails.
template <class Make>
bufferevent* server_tls_bufferevent(SSL_CTX* ctx, Make make) {
    SSL* ssl = SSL_new(ctx);
    if (!ssl) return nullptr;
    bufferevent* bev = make(ssl);
    if (!bev) {
        SSL_free(ssl);
        return nullptr;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

constexpr int kServerBevOptions = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;

}  // namespace

bufferevent* start_server_tls(event_base* base, bufferevent* plain, SSL_CTX* ctx) {
    return server_tls_bufferevent(ctx, [&](SSL* ssl) {
        return bufferevent_openssl_filter_new(base, plain, ssl, BUFFEREVENT_SSL_ACCEPTING, kServerBevOptions);
    });
}

bufferevent* accept_tls(event_base* base, int fd, SSL_CTX* ctx) {
    return server_tls_bufferevent(ctx, [&](SSL* ssl) {
        return bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, kServerBevOptions);
    });
}

std::string bufferevent_errors(bufferevent* bev) {
    std::string out;
    char buf[256];
    while (unsigned long e = bufferevent_get_openssl_error(bev)) {
        if (ERR_GET_LIB(e) == 0) continue;  // libevent's own bookkeeping entries, not OpenSSL reasons
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out;
}

SSL* ssl_of(bufferevent* bev) { return bev ? bufferevent_openssl_get_ssl(bev) : nullptr; }

}  // namespace tern::tls
