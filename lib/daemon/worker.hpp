// Common start-up and main loop of every tern worker daemon (smtpd, qmgr, ...).
//
// master execs a worker as
//
//   <daemon_directory>/<command> -c CONFIG_DIR -s SERVICE_NAME [-o key=value]... [args]
//
// with its listening sockets passed by the systemd socket-activation
// convention (sd_listen_fds(3)): LISTEN_PID is the worker's pid, LISTEN_FDS
// the count, LISTEN_FDNAMES a colon-separated list of names, and the sockets
// are fds 3, 4, ...  The same worker therefore also runs under systemd.
//
// start_worker() parses that command line, loads tern.conf with the -o
// overrides, starts logging as "tern/<program>", takes ownership of the
// passed sockets and unsets the LISTEN_* variables so children do not
// inherit them.  run_loop() then runs the worker's event loop with the
// standard signal handling: SIGTERM/SIGINT ask for a graceful stop, SIGHUP
// calls the reload callback (ignored when there is none), SIGPIPE is
// ignored.  Parent death: master sets PR_SET_PDEATHSIG(SIGTERM) in the child
// before exec, so a worker whose master died gets the same graceful stop.
//
// Readiness, like sd_notify(READY=1): master also passes the write end of a
// pipe, its number in TERN_READY_FD (not counted in LISTEN_FDS).
// start_worker() takes it (close-on-exec, variable unset); notify_ready()
// writes "ready" and closes it.  A worker calls notify_ready() once its
// config is loaded and its listeners are taken over, right before its event
// loop; until then master shows the process as "starting", and an exit
// before it is a crash.  run_loop() notifies too, for a worker that forgot.
// Without TERN_READY_FD (run by hand, under systemd) it does nothing.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/config/config.hpp"
#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

struct event_base;

namespace tern::daemon {

struct WorkerContext {
    config::Config config;
    std::string service;                      // -s NAME; the program name when absent
    std::vector<Fd> listeners;                // fds passed by master, in LISTEN_FDNAMES order
    std::vector<std::string> listener_names;  // one per listener ("" when not given)
    std::vector<std::string> args;            // remaining arguments after the options
};

// What a worker's command line looks like, for --help.
std::string worker_usage(std::string_view program, std::string_view extra_usage = "");

// Parses argv and the environment without side effects on logging.  An
// argv containing --help/-h yields an Error whose message is "help".
Result<WorkerContext> parse_worker_args(int argc, char** argv, std::string_view program);

// Sockets passed by the systemd convention: validates LISTEN_PID == getpid(),
// takes fds 3 .. 3+LISTEN_FDS-1 (close-on-exec set), unsets the variables.
// No LISTEN_FDS at all means no sockets (not an error).
Status take_listen_fds(std::vector<Fd>& fds, std::vector<std::string>& names);

// The readiness pipe named by TERN_READY_FD: validated, close-on-exec set,
// the variable unset; nullopt-like invalid Fd when the variable is absent.
Result<Fd> take_ready_fd();

// The whole start-up: parse, load config, log::init(program, log_target),
// take the listening sockets and the readiness pipe.  Prints usage and exits 0 on --help; prints
// the error to stderr, logs it, and exits 1 on any failure.
WorkerContext start_worker(int argc, char** argv, std::string_view program,
                           std::string_view extra_usage = "");

// Tells master this worker is ready (see above).  Idempotent; a no-op when
// no readiness pipe was passed or it was already used.
void notify_ready();

struct LoopHandlers {
    // SIGTERM/SIGINT.  Called once; should stop accepting work and let the
    // loop run dry, or call event_base_loopexit.  When empty, the loop exits.
    std::function<void()> on_stop;
    // SIGHUP.  When empty, SIGHUP is ignored.
    std::function<void()> on_reload;
};

// Runs base's loop with the standard signal handling until it has no more
// events or is told to exit; calls notify_ready() first.  A second SIGTERM during a graceful stop exits
// the loop at once.  Returns 0, or 1 when the loop failed.
int run_loop(event_base* base, LoopHandlers handlers);

}  // namespace tern::daemon
