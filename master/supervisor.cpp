// Supervision of worker processes: start, reap, restart with backoff,
// throttle crash loops, retire on reload and shutdown.  See supervisor.hpp.
#include "master/supervisor.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>

#include "lib/log/log.hpp"
#include "master/spawn.hpp"

namespace tern::master {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kKillCheck{200};

std::string join_listen(const config::ServiceSpec& spec) {
    std::string out;
    for (const auto& a : spec.listen) {
        if (!out.empty()) out += ',';
        out += a.to_string();
    }
    return out.empty() ? "-" : out;
}

long long seconds_since(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - t).count();
}

}  // namespace

Limits Limits::from(const config::Config& config) {
    Limits l;
    l.crash_limit = static_cast<int>(config.get_int("master_crash_limit"));
    l.crash_window = config.get_duration("master_crash_window");
    l.backoff_max = config.get_duration("master_restart_backoff_max");
    l.stop_timeout = config.get_duration("master_stop_timeout");
    if (l.crash_limit < 0) l.crash_limit = 0;
    return l;
}

Supervisor::Supervisor(event_base* base, std::string config_dir, std::string daemon_directory,
                       Limits limits, bool running_as_root)
    : base_(base),
      config_dir_(std::move(config_dir)),
      daemon_directory_(std::move(daemon_directory)),
      limits_(limits),
      root_(running_as_root) {
    kill_timer_ = event::timer(base_, [this](short) {
        auto now = Clock::now();
        for (auto& [pid, r] : retiring_) {
            if (!r.killed && now - r.since >= limits_.stop_timeout) {
                log::warning("process pid %d did not stop within %llds: sending SIGKILL",
                             static_cast<int>(pid),
                             static_cast<long long>(limits_.stop_timeout.count() / 1000));
                ::kill(pid, SIGKILL);
                r.killed = true;
            }
        }
        if (!retiring_.empty()) kill_timer_.add(kKillCheck);
    });
}

Supervisor::~Supervisor() = default;

void Supervisor::set_settings(std::string daemon_directory, Limits limits) {
    daemon_directory_ = std::move(daemon_directory);
    limits_ = limits;
}

std::string Supervisor::program_path(const config::ServiceSpec& spec) const {
    return daemon_directory_ + "/" + spec.command;
}

void Supervisor::add(config::ServiceSpec spec, std::vector<Fd> listeners,
                     std::vector<std::string> names) {
    auto s = std::make_unique<Service>();
    std::string name = spec.name;
    int count = std::max(spec.process_count, 0);
    s->spec = std::move(spec);
    s->listeners = std::move(listeners);
    s->listener_names = std::move(names);
    s->pids.assign(static_cast<size_t>(count), 0);
    s->started.assign(static_cast<size_t>(count), Clock::time_point{});
    s->restart_timer = event::timer(base_, [this, name](short) { fill_empty_slots(name); });
    Service& ref = *s;
    services_[name] = std::move(s);
    if (std::find(order_.begin(), order_.end(), name) == order_.end()) order_.push_back(name);
    for (size_t i = 0; i < ref.pids.size(); ++i) start_slot(ref, i);
}

std::vector<Fd> Supervisor::remove(const std::string& name) {
    auto it = services_.find(name);
    if (it == services_.end()) return {};
    std::vector<Fd> listeners = std::move(it->second->listeners);
    for (pid_t pid : it->second->pids)
        if (pid > 0) retire(pid);
    services_.erase(it);
    order_.erase(std::remove(order_.begin(), order_.end(), name), order_.end());
    return listeners;
}

const Service* Supervisor::find(const std::string& name) const {
    auto it = services_.find(name);
    return it == services_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Supervisor::names() const { return order_; }

void Supervisor::start_slot(Service& s, size_t slot) {
    if (stopping_ || s.throttled) return;
    auto plan = plan_for(s.spec, daemon_directory_, config_dir_, s.listeners, s.listener_names, root_);
    auto pid = spawn_worker(plan);
    if (!pid) {
        // A worker that cannot even start is a crash like any other, so a
        // missing program or user ends up throttled, not in a fork loop.
        log::warning("service %s: cannot start %s: %s", s.spec.name.c_str(), plan.program.c_str(),
                     pid.message().c_str());
        s.pids[slot] = 0;
        s.last_crash = pid.message();
        s.crashes.push_back(Clock::now());
        on_crash(s, slot, -1);
        return;
    }
    s.pids[slot] = pid.value();
    s.started[slot] = Clock::now();
    log::debug("service %s: started %s pid %d", s.spec.name.c_str(), plan.program.c_str(),
               static_cast<int>(pid.value()));
}

void Supervisor::fill_empty_slots(const std::string& name) {
    auto it = services_.find(name);
    if (it == services_.end()) return;
    Service& s = *it->second;
    if (s.throttled) {
        log::info("service %s: throttle expired, starting again", name.c_str());
        s.throttled = false;
        s.crashes.clear();
    }
    for (size_t i = 0; i < s.pids.size(); ++i) {
        if (s.pids[i] == 0) {
            ++s.restarts;
            start_slot(s, i);
            // start_slot may have throttled the service or scheduled a retry.
            if (s.throttled || s.restart_timer.pending()) break;
        }
    }
}

// Common path of a crash (exit or failed start): prune the crash window,
// throttle or schedule the restart.  The crash was already pushed.
void Supervisor::on_crash(Service& s, size_t slot, int wait_status) {
    (void)slot;
    (void)wait_status;
    auto now = Clock::now();
    while (!s.crashes.empty() && now - s.crashes.front() > limits_.crash_window) s.crashes.pop_front();
    if (stopping_) return;
    int n = static_cast<int>(s.crashes.size());
    if (n > limits_.crash_limit) {
        if (!s.throttled) {
            s.throttled = true;
            log::warning("service %s: throttling after %d crashes", s.spec.name.c_str(), n);
        }
        s.restart_timer.del();
        s.restart_timer.add(limits_.backoff_max);
        return;
    }
    if (s.restart_timer.pending()) return;
    auto delay = kFirstBackoff;
    for (int i = 1; i < n && delay < limits_.backoff_max; ++i) delay *= 2;
    delay = std::min(delay, limits_.backoff_max);
    s.restart_timer.add(delay);
}

void Supervisor::reap() {
    for (int rounds = 0; rounds < 10000; ++rounds) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR) continue;
        if (pid <= 0) break;
        if (retiring_.erase(pid)) {
            log::debug("process pid %d stopped: %s", static_cast<int>(pid), describe_exit(status).c_str());
            continue;
        }
        bool found = false;
        for (auto& [name, sp] : services_) {
            Service& s = *sp;
            for (size_t i = 0; i < s.pids.size(); ++i) {
                if (s.pids[i] != pid) continue;
                found = true;
                s.pids[i] = 0;
                std::string reason = describe_exit(status);
                if (stopping_) break;
                // Postfix: "warning: process /usr/libexec/postfix/smtpd pid 123 exit status 1"
                log::warning("process %s pid %d %s", program_path(s.spec).c_str(),
                             static_cast<int>(pid), reason.c_str());
                s.last_crash = reason;
                s.crashes.push_back(Clock::now());
                on_crash(s, i, status);
                break;
            }
            if (found) break;
        }
    }
    check_stopped();
}

void Supervisor::retire(pid_t pid) {
    ::kill(pid, SIGTERM);
    retiring_[pid] = Retiring{Clock::now(), false};
    if (!kill_timer_.pending()) kill_timer_.add(kKillCheck);
}

void Supervisor::stop_all(std::function<void()> done) {
    stopping_ = true;
    stopped_ = std::move(done);
    for (auto& [name, sp] : services_) {
        sp->restart_timer.del();
        for (pid_t& pid : sp->pids) {
            if (pid > 0) retire(pid);
            pid = 0;
        }
    }
    check_stopped();
}

void Supervisor::check_stopped() {
    if (!stopping_ || !retiring_.empty() || !stopped_) return;
    auto done = std::move(stopped_);
    stopped_ = nullptr;
    kill_timer_.del();
    done();
}

void Supervisor::describe(ipc::Message& reply) const {
    for (const auto& name : order_) {
        const Service& s = *services_.at(name);
        int running = 0;
        for (pid_t pid : s.pids)
            if (pid > 0) ++running;
        std::string state = s.throttled ? "throttled"
                            : running == static_cast<int>(s.pids.size()) ? "running"
                            : "starting";
        reply.add("service", name);
        reply.add("state", state);
        reply.add("listen_type", s.spec.type == config::ListenType::Inet   ? "inet"
                          : s.spec.type == config::ListenType::Unix ? "unix"
                                                                    : "none");
        reply.add("listen", join_listen(s.spec));
        reply.add("user", s.spec.user);
        reply.add("command", program_path(s.spec));
        reply.add_int("procs", static_cast<int64_t>(s.pids.size()));
        for (size_t i = 0; i < s.pids.size(); ++i) {
            if (s.pids[i] <= 0) continue;
            reply.add("process", std::to_string(s.pids[i]) + " " + std::to_string(seconds_since(s.started[i])));
        }
        reply.add_int("restarts", s.restarts);
        reply.add_int("throttled", s.throttled ? 1 : 0);
        reply.add("last_crash", s.last_crash);
    }
}

}  // namespace tern::master
