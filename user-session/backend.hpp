// Starting one backend process for a system user: fork, become the user
// for good, exec imapd or pop3d in backend mode on the client socket.
//
// In the child, while still root: the capability bounding set is emptied
// and PR_SET_NO_NEW_PRIVS set (no set-uid program can bring root back),
// then initgroups + setgid + setuid (lib/sys/privileges, which proves the
// drop), a check that no capability is left (effective, permitted,
// inheritable, ambient), chdir to the home directory, and exec of the
// program through an fd opened by root before the drop (so that a
// daemon_directory the user cannot traverse still works).  The client
// socket becomes fd 3 with the systemd convention (LISTEN_FDS=1), the
// environment is rebuilt from nothing.  A failure before exec comes back
// to the parent through a close-on-exec pipe, so start() only reports
// success once the program runs.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"
#include "lib/sys/privileges.hpp"

namespace tern::usersession {

struct BackendSpec {
    sys::UserIds user;              // from the passwd database, checked against the ticket
    std::string program;            // absolute path: <daemon_directory>/imapd
    std::vector<std::string> args;  // argv[1..]
    Fd client;                      // the socket the backend serves
    std::string log_file;           // log_target when it is a file: opened as root, the backend's stderr
};

// The pid of the running backend, or why it could not be started.
Result<pid_t> start_backend(BackendSpec spec);

}  // namespace tern::usersession
