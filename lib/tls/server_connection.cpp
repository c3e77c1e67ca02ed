// TLS around a server's client connections: see server_connection.hpp.
#include "lib/tls/server_connection.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sys/stat.h>
#include <unistd.h>

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

}  // namespace tern::tls
