// imapd's per-process state and listeners (see server.hpp).
#include "imapd/server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>

#include "imapd/session.hpp"
#include "lib/log/log.hpp"

namespace tern::imapd {

Result<Settings> Settings::from(const config::Config& config) {
    Settings s;
    std::string mode = config.get("imapd_mode");
    if (mode == "imaps") s.implicit_tls = true;
    else if (mode != "imap") return Error{"imapd_mode: expected imap or imaps, got '" + mode + "'"};
    std::string plain = config.get("imapd_plaintext_auth");
    if (plain == "never") s.plaintext_on_loopback = false;
    else if (plain != "loopback")
        return Error{"imapd_plaintext_auth: expected loopback or never, got '" + plain + "'"};
    long long line = config.get_int("imapd_line_length_limit");
    // RFC 7162 4: servers should accept command lines of at least 8192 octets.
    s.limits.line_max = line < 1024 ? 1024 : static_cast<size_t>(line);
    uint64_t cmd = config.get_size("imapd_command_size_limit");
    s.limits.command_max = cmd < s.limits.line_max ? s.limits.line_max : static_cast<size_t>(cmd);
    s.limits.append_max = config.get_size("imapd_append_limit");
    if (s.limits.append_max == 0) s.limits.append_max = UINT32_MAX;
    s.limits.append_total_max = s.limits.append_max + s.limits.command_max;
    s.login_timeout = config.get_duration("imapd_login_timeout");
    s.timeout = config.get_duration("imapd_timeout");
    s.auth_socket = config.get("auth_socket");
    s.user_session_socket = config.get("user_session_socket");
    return s;
}

Result<std::unique_ptr<Server>> Server::create(event_base* base, const config::Config& config) {
    auto settings = Settings::from(config);
    if (!settings) return settings.error();
    std::unique_ptr<Server> server(new Server(base, std::move(*settings)));
    std::string cert = config.get("imapd_tls_cert_file"), key = config.get("imapd_tls_key_file");
    struct stat st;
    if (!cert.empty() && ::stat(cert.c_str(), &st) == 0) {
        auto ctx = tls::server_context(cert, key);
        if (!ctx) return Error{"TLS: " + ctx.message()};
        server->tls_ = std::move(*ctx);
    } else if (server->settings_.implicit_tls) {
        return Error{"imapd_mode=imaps needs a certificate, but imapd_tls_cert_file '" + cert + "' does not exist"};
    } else {
        log::warning("no TLS certificate (%s): STARTTLS is not offered", cert.c_str());
    }
    server->auth_ = std::make_unique<auth::Client>(base, server->settings_.auth_socket);
    Server* raw = server.get();
    server->reaper_ = event::timer(base, [raw](short) { raw->dead_.clear(); });
    return server;
}

Server::~Server() {
    listeners_.clear();
    sessions_.clear();
    dead_.clear();
}

Status Server::listen(std::vector<Fd> listeners) {
    for (auto& fd : listeners) {
        int flags = fcntl(fd.get(), F_GETFL);
        fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
        evconnlistener* l = evconnlistener_new(base_, &Server::on_accept, this, LEV_OPT_CLOSE_ON_FREE, -1, fd.get());
        if (!l) return Error{"cannot listen on fd " + std::to_string(fd.get())};
        fd.release();
        evconnlistener_set_error_cb(l, &Server::on_accept_error);
        listeners_.emplace_back(l);
    }
    return {};
}

void Server::stop_accepting() { listeners_.clear(); }

void Server::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
    auto* self = static_cast<Server*>(arg);
    if (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    evutil_make_socket_nonblocking(fd);
    auto session = std::make_shared<Session>(*self, fd, addr, self->settings_.implicit_tls);
    Session* key = session.get();
    self->sessions_.emplace(key, std::move(session));
    key->start();
}

void Server::on_accept_error(evconnlistener*, void*) {
    log::warning("accept: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

void Server::finished(Session* session) {
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return;
    dead_.push_back(std::move(it->second));
    sessions_.erase(it);
    if (!reaper_.pending()) reaper_.add(std::chrono::milliseconds(1));
    if (backend_mode_) event_base_loopexit(base_, nullptr);
}

}  // namespace tern::imapd
