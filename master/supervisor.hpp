// The supervisor: master's table of services and their worker processes.
//
// Each service (one services.conf line) owns its listening sockets and
// `process_count` slots; each slot holds one running worker.  A worker that
// exits without being asked to is a crash, logged with its reason
// ("warning: process /usr/libexec/tern/smtpd pid 123 killed by signal 9").
// What happens next depends on whether the worker did work:
//
// - A worker "did work" once it wrote "ready" on its readiness pipe
//   (lib/daemon's notify_ready: its config is loaded, its listeners are
//   taken and its event loop serves them).  When such a worker dies --
//   killed by the OOM killer or an admin, or crashed on some input -- its
//   slot is refilled at once and the death does not count toward
//   throttling, like Postfix, which only throttles a process that exits
//   before it took any work.  The one brake: a slot is never started twice
//   within kRespawnPace (100 ms), so a worker that dies right after saying
//   ready restarts at most ten times a second instead of fork-looping.
//   Both steps are logged with master's own clock, so an admin (and
//   tests/e2e/test_restart.py) can see that the restart was not held back:
//   "service smtp: pid 456 replaces pid 123, started at once (0 ms after
//   its exit)" or "... started after the restart pace (80 ms ...)", then
//   "service smtp: pid 456 ready, 41 ms after pid 123 exited".
// - A worker that dies before it is ready (or cannot be started at all) is
//   a start-up crash: it is counted, and the slot is refilled after an
//   exponential backoff (100 ms, doubling, at most
//   master_restart_backoff_max).  More than master_crash_limit start-up
//   crashes within master_crash_window throttle the service: nothing is
//   restarted for master_restart_backoff_max, then it is tried again
//   ("warning: service smtp: throttling after 6 crashes").  mailctl status
//   shows the state, the last crash ("... at start-up") and, while
//   throttled, the count and when it is retried.
//
// A service is "running" only when every slot holds a ready worker.
//
// Workers asked to stop (reload, removed service, shutdown) are "retiring":
// they get SIGTERM, then SIGKILL after master_stop_timeout, and their exits
// are not crashes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lib/config/config.hpp"
#include "lib/config/services.hpp"
#include "lib/core/fd.hpp"
#include "lib/event/loop.hpp"
#include "lib/ipc/message.hpp"

namespace tern::master {

using Clock = std::chrono::steady_clock;

struct Limits {
    int crash_limit = 5;
    std::chrono::milliseconds crash_window{60'000};
    std::chrono::milliseconds backoff_max{60'000};
    std::chrono::milliseconds stop_timeout{10'000};
    static Limits from(const config::Config& config);
};

// One slot of a service: the worker running in it, if any.
struct Process {
    pid_t pid = 0;  // 0 = empty slot
    Clock::time_point started;
    bool ready = false;  // said "ready" on its readiness pipe
    Fd ready_pipe;       // read end, until "ready" or EOF
    event::Watch ready_watch;
    // When it replaces a ready worker that died: that one's pid and the
    // moment master reaped it, for the "ready ... after" log line.
    pid_t replaces = 0;
    Clock::time_point replaced_died;
};

// A ready worker that died and whose slot awaits (or just got) its successor.
struct Death {
    pid_t pid = 0;  // 0: none
    Clock::time_point reaped;
};

struct Service {
    config::ServiceSpec spec;
    std::vector<Fd> listeners;
    std::vector<std::string> listener_names;
    std::vector<Process> procs;  // one per slot
    int restarts = 0;
    std::deque<Clock::time_point> crashes;  // start-up crashes within the crash window
    bool throttled = false;
    Clock::time_point throttled_until;
    std::string last_crash;                 // "killed by signal 9", "exit status 1 at start-up"
    event::Watch restart_timer;             // backoff and throttle (start-up crashes)
    // Slots whose ready worker died: refilled at once, or at the latest
    // start + kRespawnPace (respawn_timer).
    std::vector<bool> respawn;
    std::vector<Clock::time_point> last_start;  // per slot
    std::vector<Death> died;                    // per slot, until its successor starts
    event::Watch respawn_timer;
};

class Supervisor {
public:
    Supervisor(event_base* base, std::string config_dir, std::string daemon_directory,
               Limits limits, bool running_as_root);
    ~Supervisor();

    // Takes the service and starts its processes.
    void add(config::ServiceSpec spec, std::vector<Fd> listeners, std::vector<std::string> names);
    // Stops a service's processes (retiring them) and removes it; returns
    // its listeners so a replacement with the same addresses can reuse them.
    std::vector<Fd> remove(const std::string& name);

    const Service* find(const std::string& name) const;
    std::vector<std::string> names() const;  // in services.conf order
    void set_order(std::vector<std::string> names) { order_ = std::move(names); }

    // New settings for services added from now on (reload).
    void set_settings(std::string daemon_directory, Limits limits);

    // Reap exited children (call on SIGCHLD).
    void reap();

    // Shutdown: SIGTERM to every worker, SIGKILL after the stop timeout;
    // calls done once every worker has exited.
    void stop_all(std::function<void()> done);
    bool stopping() const { return stopping_; }

    // Fills a "status" reply (format: see control.hpp).
    void describe(ipc::Message& reply) const;

private:
    void start_slot(Service& s, size_t slot);
    void on_ready_pipe(const std::string& name, size_t slot, pid_t pid);
    static bool said_ready(const Process& p);
    void fill_empty_slots(const std::string& name);
    void on_crash(Service& s, size_t slot, int wait_status);
    void respawn_slot(Service& s, size_t slot, Death death);
    void respawn_due(const std::string& name);
    void retire(pid_t pid);
    void check_stopped();
    std::string program_path(const config::ServiceSpec& spec) const;

    event_base* base_;
    std::string config_dir_;
    std::string daemon_directory_;
    Limits limits_;
    bool root_;
    std::vector<std::string> order_;
    std::map<std::string, std::unique_ptr<Service>> services_;
    struct Retiring {
        Clock::time_point since;  // when SIGTERM was sent
        bool killed = false;      // SIGKILL sent after the stop timeout
    };
    std::map<pid_t, Retiring> retiring_;
    event::Watch kill_timer_;
    bool stopping_ = false;
    std::function<void()> stopped_;
};

}  // namespace tern::master
