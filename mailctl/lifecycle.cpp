// mailctl start / stop / reload: validating the configuration, starting
// master with its readiness handshake, and asking it to stop or reload.
//
// Alongside systemd: when systemd is the init system and tern.service is
// installed, `mailctl start` on the default configuration (/etc/tern) asks
// systemd to start the unit, and `mailctl stop` of a master that runs in a
// systemd unit asks systemd to stop it, so systemd's view (and
// Restart=on-failure) stays right; both say so.  `mailctl start
// --foreground` is what the unit runs, so it never goes through systemd.
// TERN_NO_SYSTEMD=1 in the environment turns the delegation off.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include "lib/daemon/systemd.hpp"
#include "lib/sys/lock_file.hpp"
#include "lib/sys/process.hpp"
#include "mailctl/commands.hpp"

namespace tern::mailctl {
namespace {

using Clock = std::chrono::steady_clock;

// A pid that is gone, or a zombie nobody reaped yet, no longer runs.
bool process_alive(pid_t pid) {
    if (pid <= 0) return false;
    if (kill(pid, 0) != 0 && errno == ESRCH) return false;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (stat && std::getline(stat, line)) {
        auto close = line.rfind(')');
        if (close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z') return false;
    }
    return true;
}

void sleep_a_little() { std::this_thread::sleep_for(std::chrono::milliseconds(50)); }

pid_t running_master_pid(const config::Config& config) {
    auto reply = ask_master(config, ipc::Message("status"), 5000);
    if (reply) {
        auto pid = reply->get_int("master_pid");
        if (pid) return static_cast<pid_t>(pid.value());
    }
    return sys::LockFile::holder(config.get("run_directory") + "/master.pid");
}

constexpr const char* kUnit = "tern.service";
constexpr const char* kDefaultConfigDir = "/etc/tern";

bool delegation_allowed() {
    const char* off = std::getenv("TERN_NO_SYSTEMD");
    return !(off && *off && std::string(off) != "0") && daemon::systemd_booted();
}

// Runs `systemctl VERB UNIT` and returns its exit status (-1: not run).
int systemctl(const std::string& verb, const std::string& unit) {
    auto pid = sys::spawn({"systemctl", verb, unit});
    if (!pid) {
        print_error("systemctl: " + pid.message());
        return -1;
    }
    int status = 0;
    while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// tern.service is installed and systemd knows it.
bool unit_installed() {
    for (const char* dir : {"/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"}) {
        struct stat st {};
        if (::stat((std::string(dir) + "/" + kUnit).c_str(), &st) == 0) return true;
    }
    return false;
}

}  // namespace

// The tern unit master runs in, "" when none.  Only tern's own units count:
// a master started by hand from inside another service (a CI runner's
// unit) is not managed by that unit, and stopping it must never stop that.
static std::string tern_unit_of(pid_t master_pid) {
    std::string unit = daemon::systemd_unit_of(master_pid);
    return unit.rfind("tern", 0) == 0 ? unit : "";
}

std::string systemd_unit_note(pid_t master_pid) {
    std::string unit = tern_unit_of(master_pid);
    return unit.empty() ? "" : "managed by systemd: " + unit;
}

// Services whose workers have not all said they are ready.
static std::vector<std::string> starting_services(const ipc::Message& status) {
    std::vector<std::string> starting;
    std::string service;
    for (const auto& [key, value] : status.attributes()) {
        if (key == "service") service = value;
        else if (key == "state" && value == "starting" && !service.empty()) starting.push_back(service);
    }
    return starting;
}

int cmd_start(Context& ctx, const std::vector<std::string>& args) {
    bool foreground = false;
    for (const auto& a : args) {
        if (a == "--foreground" || a == "-f") foreground = true;
        else return usage_error("start", "unknown argument '" + a + "'");
    }
    auto loaded = load_all(ctx);
    if (!loaded) return kExitFailure;
    const config::Config& config = loaded->first;

    if (pid_t pid = running_master_pid(config); pid > 0) {
        std::string note = systemd_unit_note(pid);
        std::fprintf(stderr, "mailctl: tern is already running (pid %d%s)\n", static_cast<int>(pid),
                     note.empty() ? "" : (", " + note).c_str());
        return kExitFailure;
    }
    if (!foreground && ctx.config_dir == kDefaultConfigDir && delegation_allowed() && unit_installed()) {
        std::printf("mailctl: tern is managed by systemd: systemctl start %s\n", kUnit);
        std::fflush(stdout);
        int rc = systemctl("start", kUnit);
        if (rc != 0) {
            print_error(std::string("systemctl start ") + kUnit + " failed; see: journalctl -u " + kUnit);
            return kExitFailure;
        }
        std::printf("tern started (pid %d, %s)\n", static_cast<int>(running_master_pid(config)), kUnit);
        return kExitOk;
    }
    const std::string master = config.get("daemon_directory") + "/master";
    if (access(master.c_str(), X_OK) != 0) {
        print_error("cannot run " + master + ": " + std::strerror(errno) + " (check daemon_directory)");
        return kExitFailure;
    }
    std::fflush(nullptr);
    if (foreground) {
        execl(master.c_str(), "master", "-c", ctx.config_dir.c_str(), static_cast<char*>(nullptr));
        print_error("exec " + master + ": " + std::strerror(errno));
        return kExitFailure;
    }

    // master -d returns once it is ready (exit 0) or has printed why it
    // could not start (exit 1); see sys::daemonize().
    pid_t child = fork();
    if (child < 0) {
        print_error(std::string("fork: ") + std::strerror(errno));
        return kExitFailure;
    }
    if (child == 0) {
        execl(master.c_str(), "master", "-c", ctx.config_dir.c_str(), "-d", static_cast<char*>(nullptr));
        std::fprintf(stderr, "mailctl: error: exec %s: %s\n", master.c_str(), std::strerror(errno));
        _exit(127);
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fputs("mailctl: tern did not start\n", stderr);
        return kExitFailure;
    }
    // Ready means the control socket exists; prove it answers, then give the
    // workers a moment to say they are ready so that `status` right after
    // `start` shows them running.
    auto deadline = Clock::now() + std::chrono::seconds(15);
    auto workers_deadline = Clock::now() + std::chrono::seconds(10);
    std::optional<ipc::Message> answered;
    while (Clock::now() < deadline) {
        auto reply = ask_master(config, ipc::Message("status"), 2000);
        if (reply && reply->type() == "status") {
            answered = std::move(*reply);
            std::vector<std::string> starting = starting_services(*answered);
            if (starting.empty() || Clock::now() >= workers_deadline) {
                std::printf("tern started (pid %s)\n", answered->get_or("master_pid", "?").c_str());
                for (const auto& name : starting)
                    std::printf("mailctl: service %s is still starting; see `mailctl status`\n", name.c_str());
                return kExitOk;
            }
        }
        sleep_a_little();
    }
    if (answered) return kExitOk;
    print_error("master reported ready but does not answer on " + control_socket_path(config));
    return kExitFailure;
}

int cmd_stop(Context& ctx, const std::vector<std::string>& args) {
    if (!args.empty()) return usage_error("stop", "unexpected argument '" + args[0] + "'");
    // A tern.conf being edited must not keep anyone from stopping tern.
    const config::Config config = load_config_lenient(ctx);
    pid_t pid = running_master_pid(config);
    if (std::string unit = pid > 0 ? tern_unit_of(pid) : ""; !unit.empty() && delegation_allowed()) {
        std::printf("mailctl: tern is managed by systemd: systemctl stop %s\n", unit.c_str());
        std::fflush(stdout);
        if (systemctl("stop", unit) != 0) {
            print_error("systemctl stop " + unit + " failed");
            return kExitFailure;
        }
        std::puts("tern stopped");
        return kExitOk;
    }
    auto reply = ask_master(config, ipc::Message("stop"));
    if (!reply && is_not_running(reply.error()) && !process_alive(pid)) {
        std::puts("tern is not running");
        return kExitOk;
    }
    if (!reply && !is_not_running(reply.error())) {
        // The reply may be lost when master exits quickly; only the pid counts.
        if (!process_alive(pid)) {
            std::puts("tern stopped");
            return kExitOk;
        }
        print_error(reply.message());
        return kExitFailure;
    }
    if (reply && reply->type() == "ok") {
        if (auto p = reply->get_int("master_pid"); p) pid = static_cast<pid_t>(p.value());
    }
    // The lenient config may hold a bad value: fall back to the default.
    auto configured = config::parse_duration(config.get("master_stop_timeout"));
    auto limit = (configured ? configured.value() : std::chrono::seconds(10)) + std::chrono::seconds(15);
    auto deadline = Clock::now() + limit;
    while (process_alive(pid)) {
        if (Clock::now() >= deadline) {
            print_error("master (pid " + std::to_string(pid) + ") did not stop within " +
                        std::to_string(limit.count()) + "s");
            return kExitFailure;
        }
        sleep_a_little();
    }
    std::puts("tern stopped");
    return kExitOk;
}

int cmd_reload(Context& ctx, const std::vector<std::string>& args) {
    if (!args.empty()) return usage_error("reload", "unexpected argument '" + args[0] + "'");
    // Check first, so the administrator sees file:line here, not in the log.
    auto loaded = load_all(ctx);
    if (!loaded) {
        std::fputs("mailctl: configuration has errors; nothing reloaded\n", stderr);
        return kExitFailure;
    }
    auto reply = ask_master(loaded->first, ipc::Message("reload"), 30000);
    if (!reply) {
        if (is_not_running(reply.error())) {
            std::fputs("tern is not running\n", stderr);
            return kExitNotRunning;
        }
        print_error(reply.message());
        return kExitFailure;
    }
    if (reply->type() != "ok") {
        std::fprintf(stderr, "mailctl: reload refused:\n%s\n", reply->get_or("message", "").c_str());
        return kExitFailure;
    }
    std::puts("tern reloaded");
    return kExitOk;
}

}  // namespace tern::mailctl
