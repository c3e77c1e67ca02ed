// Starting one worker process: fork, pass the listening sockets by the
// systemd convention, tie the child's life to master, drop privileges, exec.
//
// The child also gets the write end of a readiness pipe as fd 3+N (N
// listeners), its number in TERN_READY_FD; the worker writes "ready" there
// once it has loaded its config and taken its listeners (lib/daemon).
//
// The child reports any failure before exec (privilege drop, exec itself)
// through a close-on-exec pipe, so spawn_worker() returns a real error
// instead of a pid that dies a moment later for a reason nobody sees.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "lib/config/services.hpp"
#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

namespace tern::master {

struct SpawnPlan {
    std::string program;                      // absolute path to exec
    std::vector<std::string> argv;            // argv[0] included
    std::vector<int> listeners;               // become fds 3, 4, ... in the child
    std::vector<std::string> listener_names;  // LISTEN_FDNAMES
    std::string user;                         // drop to this user when master is root
    bool drop = false;                        // master is root: the drop is mandatory
};

// The plan for one process of a service: the program is
// <daemon_directory>/<command> (services.conf allows only plain names); argv is "<command> -c CONFIG_DIR -s NAME args...".
SpawnPlan plan_for(const config::ServiceSpec& spec, const std::string& daemon_directory,
                   const std::string& config_dir, const std::vector<Fd>& listeners,
                   const std::vector<std::string>& listener_names, bool running_as_root);

struct Spawned {
    pid_t pid = 0;
    Fd ready;  // read end of the readiness pipe, non-blocking, close-on-exec
};

// Forks and execs; returns the child once exec succeeded.
Result<Spawned> spawn_worker(const SpawnPlan& plan);

// "exit status 1", "killed by signal 9" (Postfix's wording), from waitpid's status.
std::string describe_exit(int wait_status);

}  // namespace tern::master
