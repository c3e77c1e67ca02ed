// imapd's settings from tern.conf and its Server: the per-process state it
// shares with the other mailbox access daemon (lib/mailaccess/server.hpp),
// created from the settings, or in backend mode for one system user.
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
#include "lib/imap/reader.hpp"
#include "lib/mailaccess/server.hpp"
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

class Server : public mailaccess::Server<Session, Settings> {
public:
    static Result<std::unique_ptr<Server>> create(event_base* base, const config::Config& config);
    // Backend mode (system_user.cpp): one session for one system user, on
    // the socket user-session passed; the process ends with the session.
    static Result<std::unique_ptr<Server>> create_backend(event_base* base, const config::Config& config);
    Status serve_backend(Fd client, const std::vector<std::string>& args);
    ~Server();

private:
    explicit Server(event_base* base, Settings settings);
};

}  // namespace tern::imapd
