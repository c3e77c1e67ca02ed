// System users (docs/pop3.md, "System users"): as in imapd, the vmail
// pop3d never opens a system user's ~/Maildir.  After the auth daemon
// accepted the login, it takes the maildrop lock (so [IN-USE] works across
// both kinds of process), asks user-session (root) for a backend process
// under the user's uid, and relays the client's decrypted stream to it
// (lib/usersession/backend_link.hpp) while holding the lock.
//
// The backend is this same program started as
//   pop3d -c DIR -s pop3-backend backend user=U mail=M rip=IP tls=0|1
// with the client socket as fd 3: one Session in the TRANSACTION state,
// ending the process when it closes.
#include <event2/bufferevent.h>
#include <unistd.h>

#include "lib/log/log.hpp"
#include "lib/log/loggable.hpp"
#include "lib/usersession/backend_args.hpp"
#include "pop3d/server.hpp"
#include "pop3d/session.hpp"

namespace tern::pop3d {
namespace {

std::string loggable(std::string_view s) { return log::loggable(s, 200); }

}  // namespace

// ---- the vmail side ----

void Session::serve_system_user(const auth::Answer& a) {
    std::string user = loggable(a.user);
    auto unavailable = [this, &user](const std::string& why) {
        log::warning("login of system user %s from %s: %s", user.c_str(), peer_.c_str(), why.c_str());
        lock_ = Fd();
        send(pop3::err("SYS/TEMP", "your mailbox is unavailable, try again later"));
        resume();
    };
    if (a.login_ticket.empty()) return unavailable("the auth daemon issued no login ticket");
    if (!lock_mailbox(a.user)) {
        log::info("login of %s from %s: mailbox in use by another POP3 session", user.c_str(), peer_.c_str());
        send(pop3::err("IN-USE", "your mailbox is in use by another POP3 session"));
        resume();
        return;
    }
    usersession::BackendHandlers h;
    // The session may have closed while user-session worked (bev_ gone):
    // then the link goes with it and the backend sees EOF.
    h.started = [this, user](pid_t pid) {
        if (!bev_) return;
        user_ = user;
        state_ = State::Transaction;
        log::info("login: user=<%s>, rip=%s, tls=%s, backend=%d", user.c_str(), addr_.c_str(), tls_ ? "yes" : "no",
                  int(pid));
        backend_->relay(bev_);
    };
    h.refused = [this, user](const std::string& why) {
        if (!bev_) return;
        // The link stays until the session ends or logs in again: we are inside its callback.
        log::warning("login of system user %s from %s: no backend: %s", user.c_str(), peer_.c_str(), why.c_str());
        lock_ = Fd();
        send(pop3::err("SYS/TEMP", "your mailbox is unavailable, try again later"));
        resume();
    };
    h.ended = [this](usersession::End end, const std::string& why) {
        if (!bev_) return;
        if (end == usersession::End::ClientLeft) return close_now("lost connection");
        log::info("session of %s from %s ended: %s", user_.c_str(), peer_.c_str(), why.c_str());
        quit_ = end == usersession::End::BackendEnded;  // the backend logged the session's summary
        install_callbacks();
        if (end == usersession::End::BackendDied) send(pop3::err("SYS/TEMP", "session ended unexpectedly"));
        close_after_reply();
    };
    backend_ = std::make_unique<usersession::BackendLink>(server_.base(), server_.settings().user_session_socket,
                                                          std::move(h));
    usersession::BackendRequest req{"pop3", a.login_ticket, addr_, "", tls_};
    if (Status s = backend_->start(req); !s) {
        backend_.reset();
        return unavailable(s.message());
    }
}

// ---- the backend side (runs as the user) ----

void Session::start_backend(const std::string& user, const std::string& mail, bool tls) {
    if (!bev_) {
        log::warning("backend for %s: cannot set up the connection", loggable(user).c_str());
        server_.finished(this);
        return;
    }
    tls_ = tls;
    install_callbacks();
    if (!open_maildrop(loggable(user), mail, 0)) {  // no quota on a system user's ~/Maildir
        close_after_reply();
        return;
    }
    user_ = loggable(user);
    state_ = State::Transaction;
    auto t = maildrop_->totals();
    log::info("backend session: user=<%s>, uid=%u, rip=%s, messages=%u, size=%llu", user_.c_str(),
              unsigned(getuid()), addr_.c_str(), t.messages, static_cast<unsigned long long>(t.octets));
    send(pop3::ok("logged in, " + std::to_string(t.messages) + " messages (" + std::to_string(t.octets) + " octets)"));
}

Result<std::unique_ptr<Server>> Server::create_backend(event_base* base, const config::Config& config) {
    auto settings = Settings::from(config);
    if (!settings) return settings.error();
    settings->implicit_tls = false;  // the vmail pop3d keeps the TLS session
    settings->lock_session = false;  // and the maildrop lock
    std::unique_ptr<Server> server(new Server(base, std::move(*settings)));
    server->backend_mode_ = true;
    return server;
}

Status Server::serve_backend(Fd client, const std::vector<std::string>& args) {
    auto b = usersession::BackendArgs::parse(args, false);
    if (!b) return b.error();
    if (::getuid() == 0) return Error{"backend: refusing to serve a mailbox as root"};
    sockaddr_storage addr = b->peer();
    evutil_make_socket_nonblocking(client.get());
    auto session = std::make_shared<Session>(*this, client.release(), reinterpret_cast<const sockaddr*>(&addr));
    adopt(std::move(session))->start_backend(b->user, b->mail, b->tls);
    return {};
}

}  // namespace tern::pop3d
