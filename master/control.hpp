// master's control socket ($run_directory/master.sock, mode 0600), spoken
// by mailctl with lib/ipc messages.  Only root and master's own user may
// talk to it (SO_PEERCRED), on top of the file mode.
//
// Requests (the message type) and replies:
//
//   status  → "status": master_pid, version, config, uptime (seconds), then
//             per service, in services.conf order, a group of attributes
//             starting with "service" (name): state (running: every slot
//             holds a ready worker | starting | throttled), listen_type,
//             listen (comma-separated, "-" for none), user, command, procs
//             (configured count), one "process" per running worker
//             ("<pid> <uptime-seconds> ready|starting"), restarts, throttled (0/1),
//             last_crash ("killed by signal 9", "exit status 1 at start-up",
//             or empty), startup_crashes (start-up crashes within
//             master_crash_window), and while throttled retry_in (seconds).
//   reload  → "ok", or "error" with "message" (the config diagnostics).
//   stop    → "ok" with master_pid; master then shuts down.
//   other   → "error" with "message".
#pragma once

#include <functional>
#include <list>
#include <memory>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"
#include "lib/event/loop.hpp"
#include "lib/ipc/message.hpp"

namespace tern::ipc {
// Defined in lib/ipc/channel.hpp, which is included only by control.cpp: it
// names the libevent struct `event`, which lib/event/loop.hpp's namespace
// tern::event hides when that header comes first.
class Channel;
}  // namespace tern::ipc

namespace tern::master {

struct ControlHandlers {
    std::function<void(ipc::Message& reply)> status;
    std::function<Status()> reload;
    std::function<void()> stop;
};

class ControlServer {
public:
    // listener: a listening UNIX stream socket (non-blocking accept is used).
    ControlServer(event_base* base, Fd listener, ControlHandlers handlers);
    ~ControlServer();

private:
    void accept_clients();
    void handle(ipc::Channel& channel, ipc::Message& request);
    void sweep();

    event_base* base_;
    Fd listener_;
    ControlHandlers handlers_;
    event::Watch accept_watch_;
    event::Watch sweep_timer_;
    std::list<std::unique_ptr<ipc::Channel>> clients_;
};

}  // namespace tern::master
