// imapd's per-process state and listeners (see server.hpp).
#include "imapd/server.hpp"

#include "imapd/session.hpp"
#include "lib/log/log.hpp"
#include "lib/tls/server_connection.hpp"

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

Server::Server(event_base* base, Settings settings)
    : mailaccess::Server<Session, Settings>(base, std::move(settings), net::Acceptor::Pace::AllReady,
                                            [this](int fd, sockaddr* peer) {
                                                return std::make_shared<Session>(*this, fd, peer,
                                                                                 settings_.implicit_tls);
                                            }) {}

Server::~Server() { end_sessions(); }

Result<std::unique_ptr<Server>> Server::create(event_base* base, const config::Config& config) {
    auto settings = Settings::from(config);
    if (!settings) return settings.error();
    std::unique_ptr<Server> server(new Server(base, std::move(*settings)));
    auto tls = tls::optional_server_context("imapd_tls_cert_file", config.get("imapd_tls_cert_file"),
                                            config.get("imapd_tls_key_file"),
                                            server->settings_.implicit_tls ? "imapd_mode=imaps" : "", "STARTTLS");
    if (!tls) return tls.error();
    server->tls_ = std::move(*tls);
    return server;
}

}  // namespace tern::imapd
