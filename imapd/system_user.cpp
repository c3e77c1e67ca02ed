// System users (docs/imap.md, "System users"): a system user's ~/Maildir
// belongs to that user, so the vmail imapd never opens it.  After the auth
// daemon accepted the login, the session asks user-session (root) for a
// backend process under the user's uid, and from then on only relays the
// client's decrypted stream to it (lib/usersession/backend_link.hpp).
//
// The backend is this same program started as
//   imapd -c DIR -s imap-backend backend user=U mail=M rip=IP tls=0|1 tag=T
// with the client socket as fd 3: one Session that starts authenticated,
// answers the login's tag, and ends the process when it closes.
#include <event2/bufferevent.h>
#include <unistd.h>

#include "imapd/server.hpp"
#include "imapd/session.hpp"
#include "lib/log/log.hpp"
#include "lib/log/loggable.hpp"
#include "lib/usersession/backend_args.hpp"

namespace tern::imapd {
namespace {

std::string loggable(std::string_view s) { return log::loggable(s, 200); }

}  // namespace

// ---- the vmail side ----

void Session::serve_system_user(const auth::Answer& a) {
    std::string user = loggable(a.user);
    auto unavailable = [this, &user](const std::string& why) {
        log::warning("login of system user %s from %s: %s", user.c_str(), peer_.c_str(), why.c_str());
        tagged("NO", "UNAVAILABLE", "your mailbox is unavailable, try again later");
        resume();
    };
    if (a.login_ticket.empty()) return unavailable("the auth daemon issued no login ticket");
    usersession::BackendHandlers h;
    // The session may have closed while user-session worked (bev_ gone):
    // then the link goes with it and the backend sees EOF.
    h.started = [this, user](pid_t pid) {
        if (!bev_) return;
        user_ = user;
        state_ = State::Authenticated;
        log::info("login: user=<%s>, rip=%s, tls=%s, backend=%d", user.c_str(), addr_.c_str(), tls_ ? "yes" : "no",
                  int(pid));
        backend_->relay(bev_);
    };
    h.refused = [this, user](const std::string& why) {
        if (!bev_) return;
        // The link stays until the session ends or logs in again: we are
        // inside its callback.
        log::warning("login of system user %s from %s: no backend: %s", user.c_str(), peer_.c_str(), why.c_str());
        tagged("NO", "UNAVAILABLE", "your mailbox is unavailable, try again later");
        resume();
    };
    h.ended = [this](usersession::End end, const std::string& why) {
        if (!bev_) return;
        if (end == usersession::End::ClientLeft) return close_now("disconnected");
        log::info("session of %s from %s ended: %s", user_.c_str(), peer_.c_str(), why.c_str());
        install_callbacks();  // ours again, for the last output
        if (end == usersession::End::BackendDied) bye_and_close("session ended unexpectedly, please log in again");
        else close_after_output();
    };
    backend_ = std::make_unique<usersession::BackendLink>(server_.base(), server_.settings().user_session_socket,
                                                          std::move(h));
    usersession::BackendRequest req{"imap", a.login_ticket, addr_, tag_, tls_};
    if (Status s = backend_->start(req); !s) {
        backend_.reset();
        return unavailable(s.message());
    }
}

// ---- the backend side (runs as the user) ----

void Session::start_backend(const std::string& user, const std::string& mail, const std::string& tag, bool tls) {
    if (!bev_) {
        log::warning("backend for %s: cannot set up the connection", loggable(user).c_str());
        server_.finished(this);
        return;
    }
    tls_ = tls;
    greeted_ = true;
    tag_ = tag;
    install_callbacks();
    if (!open_store(user, mail, 0)) {  // no quota on a system user's ~/Maildir
        bye_and_close("mailbox unavailable");
        return;
    }
    user_ = user;
    state_ = State::Authenticated;
    update_timeout();
    log::info("backend session: user=<%s>, uid=%u, rip=%s", loggable(user).c_str(), unsigned(getuid()),
              addr_.c_str());
    tagged("OK", "CAPABILITY " + capabilities(), "logged in");
}

Result<std::unique_ptr<Server>> Server::create_backend(event_base* base, const config::Config& config) {
    auto settings = Settings::from(config);
    if (!settings) return settings.error();
    std::unique_ptr<Server> server(new Server(base, std::move(*settings)));
    server->backend_mode_ = true;
    // No TLS here (the vmail imapd keeps it) and no logins (auth refuses this uid).
    return server;
}

Status Server::serve_backend(Fd client, const std::vector<std::string>& args) {
    auto b = usersession::BackendArgs::parse(args, true);
    if (!b) return b.error();
    if (::getuid() == 0) return Error{"backend: refusing to serve a mailbox as root"};
    sockaddr_storage addr = b->peer();
    evutil_make_socket_nonblocking(client.get());
    auto session = std::make_shared<Session>(*this, client.release(), reinterpret_cast<const sockaddr*>(&addr), false);
    adopt(std::move(session))->start_backend(b->user, b->mail, b->tag, b->tls);
    return {};
}

}  // namespace tern::imapd
