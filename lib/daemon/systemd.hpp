// systemd integration without libsystemd: the sd_notify(3) datagram protocol
// and "which unit does this process belong to".
//
// Notify protocol (what sd_notify implements, written out here so tern does
// not link libsystemd for one datagram): systemd passes $NOTIFY_SOCKET, an
// AF_UNIX datagram socket path ("/run/systemd/notify"), or an abstract name
// when it starts with '@'.  The service sends newline-separated assignments
// ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...", "MAINPID=N") in one
// datagram; systemd identifies the sender by its credentials, so with the
// default NotifyAccess=main only the unit's main process is heard.
//
// SystemdNotifier takes $NOTIFY_SOCKET out of the environment when created,
// so that worker processes master starts later never inherit it and can
// never speak for the unit.  Outside systemd every notify() is a no-op.
//
// Unit membership: the cgroup line of /proc/PID/cgroup ends in the unit's
// name ("0::/system.slice/tern.service"); mailctl uses it to tell whether
// systemd manages a running master.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace tern::daemon {

class SystemdNotifier {
public:
    // Reads and unsets NOTIFY_SOCKET.
    static SystemdNotifier from_environment();
    bool active() const { return !address_.empty(); }
    // Sends one datagram; false when not under systemd or the send failed.
    bool notify(std::string_view state) const;

private:
    std::string address_;
};

// "tern.service" from the text of a /proc/PID/cgroup file; "" when the
// process is in no service unit (a login session, a container's root).
std::string unit_from_cgroup(std::string_view cgroup_text);
// The service unit of a running process ("" when none or unreadable).
std::string systemd_unit_of(pid_t pid);
// systemd is the init system of this machine (sd_booted(3)'s test).
bool systemd_booted();

}  // namespace tern::daemon
