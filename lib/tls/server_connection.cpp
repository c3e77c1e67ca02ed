// TLS around a server's client connections: see server_connection.hpp.
#include "lib/tls/server_connection.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>

#include "lib/log/log.hpp"

namespace tern::tls {

Result<Context> optional_server_context(const std::string& cert_key, const std::string& cert_file,
                                        const std::string& key_file, const std::string& implicit_mode,
                                        const char* starttls) {
    struct stat st;
    if (!cert_file.empty() && ::stat(cert_file.c_str(), &st) == 0) {
        auto ctx = server_context(cert_file, key_file);
        if (!ctx) return Error{"TLS: " + ctx.message()};
        return ctx;
    }
    if (!implicit_mode.empty())
        return Error{implicit_mode + " needs a certificate, but " + cert_key + " '" + cert_file + "' does not exist"};
    log::warning("no TLS certificate (%s): %s is not offered", cert_file.c_str(), starttls);
    return Context();
}

bufferevent* server_connection(event_base* base, int fd, bool implicit_tls, SSL_CTX* ctx) {
    bufferevent* bev = nullptr;
    if (implicit_tls && ctx) bev = accept_tls(base, fd, ctx);
    else if (!implicit_tls) bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) ::close(fd);
    return bev;
}

bufferevent* start_tls_after_command(event_base* base, bufferevent* plain, SSL_CTX* ctx, const std::string& peer) {
    evbuffer* in = bufferevent_get_input(plain);
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent* tls = start_server_tls(base, plain, ctx);
    if (!tls) log::warning("cannot start TLS with %s: %s", peer.c_str(), openssl_errors().c_str());
    return tls;
}

bool output_sent(bufferevent* bev) {
    for (bufferevent* b = bev; b; b = bufferevent_get_underlying(b))
        if (evbuffer_get_length(bufferevent_get_output(b)) != 0) return false;
    return true;
}

namespace {

// The socket under bev: itself (plain), or the one under its TLS layer,
// where TLS is a filter (STARTTLS) or owns the socket (implicit TLS); -1
// for any other stack (COMPRESS on top).
// What a socket bufferevent's write callback does: its output's start is
// frozen except while it writes.
void write_out(bufferevent* socket_bev, int fd) {
    evbuffer* out = bufferevent_get_output(socket_bev);
    evbuffer_unfreeze(out, 1);
    (void)evbuffer_write(out, fd);  // errors show when the loop writes the rest
    evbuffer_freeze(out, 1);
}

int stack_socket(bufferevent* bev, SSL*& ssl, bufferevent*& under) {
    ssl = bufferevent_openssl_get_ssl(bev);
    under = bufferevent_get_underlying(bev);
    if (under && (!ssl || bufferevent_get_underlying(under))) return -1;
    return bufferevent_getfd(under ? under : bev);
}

}  // namespace

bool may_send_now(bufferevent* bev) {
    SSL* ssl = nullptr;
    bufferevent* under = nullptr;
    return bev && stack_socket(bev, ssl, under) >= 0 && output_sent(bev);
}

SendNow send_now(bufferevent* bev, std::string_view data) {
    SSL* ssl = nullptr;
    bufferevent* under = nullptr;
    int fd = bev ? stack_socket(bev, ssl, under) : -1;
    if (fd < 0 || !output_sent(bev) || data.size() > INT_MAX) return SendNow::NotSent;
    // Room in the socket: a short reply then goes in one write (a TLS
    // record that did not fit could not be taken back).
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) return SendNow::NotSent;
    if (!ssl) {
        evbuffer_add(bufferevent_get_output(bev), data.data(), data.size());
        write_out(bev, fd);
        return SendNow::Sent;
    }
    ERR_clear_error();
    if (SSL_write(ssl, data.data(), static_cast<int>(data.size())) != static_cast<int>(data.size()))
        return SendNow::Broken;
    // A filter's records went into the socket bufferevent's output.
    if (under) write_out(under, fd);
    return SendNow::Sent;
}

}  // namespace tern::tls
