// pop3d's per-process state: settings from tern.conf, the TLS context, the
// auth daemon client, the listeners and the sessions.  One Server per
// process; one process serves many connections (virtual users all live
// under vmail_user, so no process per connection is needed).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/auth/client.hpp"
#include "lib/config/config.hpp"
#include "lib/core/fd.hpp"
#include "lib/event/loop.hpp"
#include "lib/event/session_set.hpp"
#include "lib/net/acceptor.hpp"
#include "lib/net/address.hpp"
#include "lib/tls/context.hpp"

namespace tern::pop3d {

class Session;

struct Settings {
    bool implicit_tls = false;          // pop3d_mode = pop3s (port 995, RFC 8314)
    size_t line_length_limit = 2048;    // longest command line, CRLF excluded
    std::chrono::seconds timeout{600};  // RFC 1939 3: autologout after at least 10 minutes
    net::NetworkList secure_networks;   // where USER/PASS/AUTH are allowed without TLS
    bool lock_session = true;           // one POP3 session per mailbox (RFC 1939 8, [IN-USE])
    std::string lock_directory;         // $mail_directory/.pop3-locks
    std::string auth_socket;
    std::string greeting;
    std::string user_session_socket;    // system users' backends (docs/pop3.md)
    static Result<Settings> from(const config::Config& config);
};

class Server {
public:
    static Result<std::unique_ptr<Server>> create(event_base* base, const config::Config& config);
    // Backend mode (system_user.cpp): one session for one system user on
    // the socket user-session passed; the process ends with the session.
    static Result<std::unique_ptr<Server>> create_backend(event_base* base, const config::Config& config);
    Status serve_backend(Fd client, const std::vector<std::string>& args);
    ~Server();

    Status listen(std::vector<Fd> listeners);
    void stop_accepting() { acceptor_.stop(); }
    size_t session_count() const { return sessions_.size(); }
    // Called by a session when it is done; destroyed soon, never inside its own callback.
    void finished(Session* session);

    event_base* base() const { return base_; }
    const Settings& settings() const { return settings_; }
    SSL_CTX* tls() const { return tls_.get(); }
    auth::Client& auth() { return *auth_; }

private:
    Server(event_base* base, Settings settings);
    void accept(int fd, sockaddr* peer);

    event_base* base_;
    Settings settings_;
    tls::Context tls_;
    std::unique_ptr<auth::Client> auth_;
    net::Acceptor acceptor_;
    event::SessionSet<Session> sessions_;
    bool backend_mode_ = false;
};

}  // namespace tern::pop3d
