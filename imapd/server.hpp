// imapd's per-process state: settings from tern.conf, the TLS context, the
// auth daemon client, the listeners and the sessions.  One Server per
// process; one process serves many connections (virtual users all live
// under vmail_user, so no per-connection process is needed).
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
#include "lib/imap/reader.hpp"
#include "lib/net/acceptor.hpp"
#include "lib/tls/context.hpp"

namespace tern::imapd {

class Session;

struct Settings {
    bool implicit_tls = false;             // imapd_mode = imaps (port 993, RFC 8314)
    bool plaintext_on_loopback = true;     // imapd_plaintext_auth = loopback
    imap::ReaderLimits limits;             // line, command and APPEND literal sizes
    std::chrono::seconds login_timeout{60};     // before authentication
    std::chrono::seconds timeout{1800};         // autologout (RFC 9051 5.4: at least 30 minutes)
    std::string auth_socket;
    std::string mail_index_directory;      // "" = beside each folder
    std::string user_session_socket;       // system users' backends (docs/imap.md)
    static Result<Settings> from(const config::Config& config);
};

class Server {
public:
    static Result<std::unique_ptr<Server>> create(event_base* base, const config::Config& config);
    // Backend mode (system_user.cpp): one session for one system user, on
    // the socket user-session passed; the process ends with the session.
    static Result<std::unique_ptr<Server>> create_backend(event_base* base, const config::Config& config);
    Status serve_backend(Fd client, const std::vector<std::string>& args);
    ~Server();

    Status listen(std::vector<Fd> listeners);
    void stop_accepting() { acceptor_.stop(); }
    size_t session_count() const { return sessions_.size(); }
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

}  // namespace tern::imapd
