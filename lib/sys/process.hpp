// Process helpers: becoming a daemon with a "ready" handshake, and spawning
// worker programs with a setup step between fork and exec.
//
// daemonize() forks twice (setsid between, so the daemon has no controlling
// terminal), but the original process does not exit until the daemon says
// it is ready or why it failed, so `mailctl start` reports startup errors
// (bad config, port in use) on the terminal and with a non-zero exit.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

namespace tern::sys {

// getpid(), read once and again in a child after fork(): glibc keeps no
// cache, and log lines, queue ids and Maildir names want it per message.
pid_t own_pid();

// The daemon's end of the handshake.  Dropping it without ready() tells the
// waiting parent that startup failed.
class ReadyNotifier {
public:
    ReadyNotifier() = default;
    explicit ReadyNotifier(Fd pipe) : pipe_(std::move(pipe)) {}
    void ready();                             // parent exits 0
    void failed(const std::string& message);  // parent prints message, exits 1
    bool pending() const { return pipe_.valid(); }

private:
    Fd pipe_;
};

// Returns only in the daemon (cwd "/", stdin/out/err on /dev/null, new
// session).  The original process waits and exits.  Errors before the
// first fork are returned in the original process.
Result<ReadyNotifier> daemonize();

// fork + exec of argv[0] (searched in PATH when it has no '/').  env empty
// means inherit the environment.  setup runs in the child before exec (dup2
// of listening sockets, privilege drop); its error, or exec's, is returned
// here in the parent instead of a pid.
using ChildSetup = std::function<Status()>;
Result<pid_t> spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                    const ChildSetup& setup = nullptr);

// "exited with status 1", "killed by signal 9 (core dumped)".
std::string describe_exit(int wait_status);

}  // namespace tern::sys
