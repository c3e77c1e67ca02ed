// pop3d's per-process state and listeners (see server.hpp).
#include "pop3d/server.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "lib/log/log.hpp"
#include "lib/tls/server_connection.hpp"
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

// One connection per wake-up, so that the other pop3d processes sharing
// the socket get their share (as in smtpd).
Server::Server(event_base* base, Settings settings)
    : mailaccess::Server<Session, Settings>(
          base, std::move(settings), net::Acceptor::Pace::OnePerWakeup,
          [this](int fd, sockaddr* peer) { return std::make_shared<Session>(*this, fd, peer); }) {}

Server::~Server() { end_sessions(); }

Result<std::unique_ptr<Server>> Server::create(event_base* base, const config::Config& config) {
    auto settings = Settings::from(config);
    if (!settings) return settings.error();
    std::unique_ptr<Server> server(new Server(base, std::move(*settings)));
    auto tls = tls::optional_server_context("pop3d_tls_cert_file", config.get("pop3d_tls_cert_file"),
                                            config.get("pop3d_tls_key_file"),
                                            server->settings_.implicit_tls ? "pop3d_mode=pop3s" : "", "STLS");
    if (!tls) return tls.error();
    server->tls_ = std::move(*tls);
    if (server->settings_.lock_session) {
        const std::string& dir = server->settings_.lock_directory;
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
            log::warning("cannot create %s: %s: POP3 sessions are not locked (no [IN-USE])", dir.c_str(),
                         strerror(errno));
            server->settings_.lock_session = false;
        }
    }
    return server;
}

}  // namespace tern::pop3d
