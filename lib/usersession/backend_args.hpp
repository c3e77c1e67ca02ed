// The command line user-session gives a backend (imapd or pop3d started
// as a system user), built on one side and parsed on the other:
//
//   <program> -c DIR -s imap-backend [-o log_target=stderr]
//             backend user=U mail=M rip=IP tls=0|1 [tag=T]
//
// The values come from the auth daemon's ticket answer (user, mail) and
// from checks in user-session (rip, tag); the backend trusts them because
// only root could have started it under this uid.
#pragma once

#include <sys/socket.h>

#include <string>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::usersession {

struct BackendArgs {
    std::string user;
    std::string mail;       // the Maildir to serve
    std::string client_ip;
    std::string tag;        // IMAP only: the login's tag
    bool tls = false;

    // The positional arguments, "backend" first.
    std::vector<std::string> to_args() const;
    // From the worker's remaining arguments (WorkerContext::args); needs
    // user and mail (and tag when need_tag).
    static Result<BackendArgs> parse(const std::vector<std::string>& args, bool need_tag);
    // client_ip as a socket address (AF_UNIX when it is no IP), for Session.
    sockaddr_storage peer() const;
};

}  // namespace tern::usersession
