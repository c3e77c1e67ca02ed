// master: tern's supervisor daemon.  Wiring only: command line, config,
// daemonizing with a readiness handshake, the pid lock, then the Runtime
// (runtime.cpp) on one event loop.
//
//   master [-c CONFIG_DIR] [-d]
//
// `mailctl start` runs `master -c DIR -d`; with -d the command returns only
// when master is ready (exit 0) or failed (message on stderr, exit 1).
// Without -d master stays in the foreground (`mailctl start --foreground`);
// under systemd (tern.service, Type=notify) it sends READY=1 when ready.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "lib/config/config.hpp"
#include "lib/config/services.hpp"
#include "lib/daemon/systemd.hpp"
#include "lib/event/loop.hpp"
#include "lib/log/log.hpp"
#include "lib/sys/files.hpp"
#include "lib/sys/lock_file.hpp"
#include "lib/sys/process.hpp"
#include "master/runtime.hpp"

namespace {

const char kUsage[] =
    "usage: master [-c CONFIG_DIR] [-d]\n"
    "\n"
    "tern's supervisor: creates the listening sockets of services.conf, runs\n"
    "and restarts the worker processes, answers mailctl on\n"
    "$run_directory/master.sock.  Normally started by `mailctl start`.\n"
    "  -c DIR      configuration directory (default: $TERN_CONFIG_DIR, /etc/tern)\n"
    "  -d          become a daemon; return once it is ready\n"
    "  -h, --help  this text\n"
    "Signals: SIGHUP reloads the configuration, SIGTERM stops every service.\n"
    "Exit status: 0 after a clean stop (or, with -d, once ready), 1 on error.\n";

int fail(tern::sys::ReadyNotifier& notifier, bool daemon, const std::string& message) {
    tern::log::error("%s", message.c_str());
    if (daemon) {
        notifier.failed(message);
    } else {
        std::fprintf(stderr, "master: error: %s\n", message.c_str());
    }
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace tern;
    std::string dir_flag;
    bool daemon = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::fputs(kUsage, stdout);
            return 0;
        } else if (a == "-d") {
            daemon = true;
        } else if (a == "-c" && i + 1 < argc) {
            dir_flag = argv[++i];
        } else {
            std::fprintf(stderr, "master: bad argument '%s'\n%s", a.c_str(), kUsage);
            return 1;
        }
    }

    // Files and sockets master and its workers create must not inherit a
    // caller's permissive (or too strict) umask.
    umask(022);

    // Configuration errors are reported on the terminal before anything else.
    auto loaded = config::Config::load(config::config_dir_from(dir_flag));
    if (!loaded) {
        std::fprintf(stderr, "%s\n", loaded.message().c_str());
        return 1;
    }
    config::Config config = std::move(loaded).value();
    auto specs = config::load_services(config);
    if (!specs) {
        std::fprintf(stderr, "%s\n", specs.message().c_str());
        return 1;
    }

    // Taken before any worker is spawned, so none inherits NOTIFY_SOCKET.
    const daemon::SystemdNotifier systemd = daemon::SystemdNotifier::from_environment();
    sys::ReadyNotifier notifier;
    if (daemon) {
        auto n = sys::daemonize();
        if (!n) {
            std::fprintf(stderr, "master: error: %s\n", n.message().c_str());
            return 1;
        }
        notifier = std::move(n).value();
    }
    log::init("master", config.get("log_target"));
    log::set_debug(config.get_bool("debug"));

    const std::string run_dir = config.get("run_directory");
    if (auto st = sys::mkdir_p(run_dir, 0755); !st) return fail(notifier, daemon, "run_directory: " + st.message());
    const std::string pid_path = run_dir + "/master.pid";
    auto lock = sys::LockFile::try_lock(pid_path);
    if (!lock) {
        pid_t holder = sys::LockFile::holder(pid_path);
        if (holder > 0) return fail(notifier, daemon, "tern is already running (pid " + std::to_string(holder) + ")");
        return fail(notifier, daemon, lock.message());
    }

    event::Base base = event::make_base();
    master::Runtime runtime(base.get(), std::move(config), std::move(specs).value());
    if (auto st = runtime.start(); !st) return fail(notifier, daemon, st.message());
    notifier.ready();
    // systemd Type=notify: the unit is active once every listener is open.
    systemd.notify("READY=1\nMAINPID=" + std::to_string(::getpid()));
    int rc = event_base_dispatch(base.get()) < 0 ? 1 : 0;
    return rc;
}
