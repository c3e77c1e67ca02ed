// pop3d's per-process state and listeners (see server.hpp).
#include "pop3d/server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "lib/log/log.hpp"
#include "pop3d/session.hpp"

namespace tern::pop3d {

Result<Settings> Settings::from(const config::Config& config) {
    Settings s;
    std::string mode = config.get("pop3d_mode");
    if (mode == "pop3s") s.implicit_tls = true;
    else if (mode != "pop3") return Error{"pop3d_mode: expected pop3 or pop3s, got '" + mode + "'"};
    long long line = config.get_int("pop3d_line_length_limit");
    // RFC 2449 4: command lines are at most 255 octets; SASL answers may be longer.
    s.line_length_limit = line < 255 ? 255 : static_cast<size_t>(line);
    s.timeout = config.get_duration("pop3d_timeout");
    if (s.timeout.count() <= 0) s.timeout = std::chrono::seconds(600);
    auto networks = net::NetworkList::parse(config.get_list("pop3d_secure_networks"));
    if (!networks) return Error{"pop3d_secure_networks: " + networks.message()};
    s.secure_networks = std::move(*networks);
    s.lock_session = config.get_bool("pop3d_lock_session");
    // Beside the virtual mailboxes: owned by vmail_user, which pop3d runs
    // as (run_directory belongs to root).  No domain starts with a dot.
    s.lock_directory = config.get("mail_directory") + "/.pop3-locks";
    s.auth_socket = config.get("auth_socket");
    s.user_session_socket = config.get("user_session_socket");
    s.greeting = config.get("pop3d_greeting");
    return s;
}

Result<std::unique_ptr<Server>> Server::create(event_base* base, const config::Config& config) {
    auto settings = Settings::from(config);
    if (!settings) return settings.error();
    std::unique_ptr<Server> server(new Server(base, std::move(*settings)));
    std::string cert = config.get("pop3d_tls_cert_file"), key = config.get("pop3d_tls_key_file");
    struct stat st;
    if (!cert.empty() && ::stat(cert.c_str(), &st) == 0) {
        auto ctx = tls::server_context(cert, key);
        if (!ctx) return Error{"TLS: " + ctx.message()};
        server->tls_ = std::move(*ctx);
    } else if (server->settings_.implicit_tls) {
        return Error{"pop3d_mode=pop3s needs a certificate, but pop3d_tls_cert_file '" + cert + "' does not exist"};
    } else {
        log::warning("no TLS certificate (%s): STLS is not offered", cert.c_str());
    }
    if (server->settings_.lock_session) {
        const std::string& dir = server->settings_.lock_directory;
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
            log::warning("cannot create %s: %s: POP3 sessions are not locked (no [IN-USE])", dir.c_str(),
                         strerror(errno));
            server->settings_.lock_session = false;
        }
    }
    server->auth_ = std::make_unique<auth::Client>(base, server->settings_.auth_socket);
    Server* raw = server.get();
    server->reaper_ = event::timer(base, [raw](short) { raw->dead_.clear(); });
    server->resume_accept_ = event::timer(base, [raw](short) { raw->resume_accepting(); });
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

void Server::stop_accepting() {
    listeners_.clear();
    resume_accept_.del();
}

void Server::resume_accepting() {
    for (auto& l : listeners_) evconnlistener_enable(l.get());
}

void Server::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
    auto* self = static_cast<Server*>(arg);
    // One connection per wake-up, so that the other pop3d processes sharing
    // the socket get their share (as in smtpd).
    for (auto& l : self->listeners_) evconnlistener_disable(l.get());
    if (!self->resume_accept_.pending()) self->resume_accept_.add(std::chrono::milliseconds(1));
    if (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    evutil_make_socket_nonblocking(fd);
    auto session = std::make_shared<Session>(*self, fd, addr);
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

}  // namespace tern::pop3d
