// What a mailbox access daemon (imapd, pop3d) holds per process, whatever
// its protocol: its settings, the TLS context, the auth daemon client, the
// listeners and the sessions.  One process serves many connections (virtual
// users all live under vmail_user, so no process per connection is needed).
// In backend mode (a system user's session, lib/usersession/backend_main.hpp)
// the process serves one session and ends with it.
//
// The daemon's Server derives from mailaccess::Server<Session, Settings>
// and adds how it is created; Settings needs `auth_socket`.  The derived
// destructor calls end_sessions(), so that sessions ending then still see
// the whole Server.
#pragma once

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "lib/auth/client.hpp"
#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"
#include "lib/event/loop.hpp"
#include "lib/event/session_set.hpp"
#include "lib/net/acceptor.hpp"
#include "lib/tls/context.hpp"

namespace tern::mailaccess {

template <class Session, class Settings>
class Server {
public:
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    Status listen(std::vector<Fd> listeners) { return acceptor_.listen(std::move(listeners)); }
    void stop_accepting() { acceptor_.stop(); }
    size_t session_count() const { return sessions_.size(); }
    // Called by a session when it is done; destroyed soon, never inside its own callback.
    void finished(Session* session) {
        if (sessions_.finish(session) && backend_mode_) event_base_loopexit(base_, nullptr);
    }

    event_base* base() const { return base_; }
    const Settings& settings() const { return settings_; }
    SSL_CTX* tls() const { return tls_.get(); }
    auth::Client& auth() { return *auth_; }

protected:
    // A new client connection's session (fd owned by it from now on).
    using MakeSession = std::function<std::shared_ptr<Session>(int fd, sockaddr* peer)>;

    Server(event_base* base, Settings settings, net::Acceptor::Pace pace, MakeSession make_session)
        : base_(base),
          settings_(std::move(settings)),
          auth_(std::make_unique<auth::Client>(base, settings_.auth_socket)),
          acceptor_(base, pace, [this](int fd, sockaddr* peer) { adopt(make_session_(fd, peer))->start(); }),
          sessions_(base),
          make_session_(std::move(make_session)) {}
    ~Server() = default;

    Session* adopt(std::shared_ptr<Session> session) { return sessions_.add(std::move(session)); }
    void end_sessions() {
        acceptor_.stop();
        sessions_.clear();
    }

    event_base* base_;
    Settings settings_;
    tls::Context tls_;
    std::unique_ptr<auth::Client> auth_;
    bool backend_mode_ = false;

private:
    net::Acceptor acceptor_;
    event::SessionSet<Session> sessions_;
    MakeSession make_session_;
};

}  // namespace tern::mailaccess
