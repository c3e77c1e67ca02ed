// pop3d's settings from tern.conf and its Server: the per-process state it
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
#include "lib/mailaccess/server.hpp"
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

class Server : public mailaccess::Server<Session, Settings> {
public:
    static Result<std::unique_ptr<Server>> create(event_base* base, const config::Config& config);
    // Backend mode (system_user.cpp): one session for one system user on
    // the socket user-session passed; the process ends with the session.
    static Result<std::unique_ptr<Server>> create_backend(event_base* base, const config::Config& config);
    Status serve_backend(Fd client, const std::vector<std::string>& args);
    ~Server();

private:
    explicit Server(event_base* base, Settings settings);
};

}  // namespace tern::pop3d
