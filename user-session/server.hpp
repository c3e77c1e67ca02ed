// The user-session service socket (root): imapd and pop3d ask here for a
// process that serves a system user's ~/Maildir under the user's own uid
// (docs/imap.md, "System users"; lib/usersession/backend_link.hpp has the
// wire protocol).
//
// A request is served only when all of these hold:
//   - the peer (SO_PEERCRED) runs as one of user_session_peer_users
//     (the vmail user imapd and pop3d run as);
//   - the auth daemon redeems the request's one-time login ticket for
//     that very peer uid and protocol (auth/login_tickets.hpp): the uid to
//     become comes from the auth daemon, never from the request;
//   - the account's uid is not 0 and not below auth_first_valid_uid, and
//     the passwd database still maps the login to that uid.
// Then backend.cpp starts "<daemon_directory>/imapd|pop3d ... backend ..."
// as the user on the socket that came with the request; its exit is
// reported back on the same connection.
//
// The ticket is redeemed with a blocking request (bounded: 5 s; the auth
// daemon answers it without hashing), and the fork waits only until the
// backend's exec: both are short, and logins of system users are rare
// next to the sessions they start.
//
// Log lines (stable):
//   backend started: user=<bob>, uid=1001, service=imap, pid=4242, rip=192.0.2.1
//   backend refused: service=imap, peer=uid 105 pid 4100, reason=...
//   backend exited: user=<bob>, pid=4242, status=exit 0
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "lib/config/config.hpp"
#include "lib/core/fd.hpp"
#include "lib/event/loop.hpp"
#include "lib/ipc/request_server.hpp"

namespace tern::usersession {

struct Settings {
    std::set<uid_t> peer_uids;       // user_session_peer_users
    long long first_valid_uid = 1000;
    std::string auth_socket;
    std::string daemon_directory;
    std::string config_directory;
    std::string log_file;            // log_target, when a file
    static Settings from(const config::Config& config);
};

class Server {
public:
    Server(event_base* base, std::vector<Fd> listeners, Settings settings);
    void close_listeners() { requests_.close_listeners(); }

private:
    struct Served {
        pid_t backend = 0;  // the one backend a connection may ask for
    };
    void on_message(uint64_t conn, ipc::Message& m);
    void serve(uint64_t conn, ipc::Message& m);
    void refuse(uint64_t conn, const std::string& service, const std::string& reason);
    void reap();
    void forget_connection(uint64_t conn);

    Settings settings_;
    struct Backend {
        uint64_t conn = 0;  // 0 once the connection closed
        std::string user;
    };
    std::map<pid_t, Backend> backends_;
    event::Watch sigchld_;
    ipc::RequestServer<Served> requests_;
};

}  // namespace tern::usersession
