// Supervision of worker processes: start, reap, restart with backoff,
// throttle crash loops, retire on reload and shutdown.  See supervisor.hpp.
#include "master/supervisor.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>

#include "lib/log/log.hpp"
#include "master/spawn.hpp"

namespace tern::master {
namespace {

constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kRespawnPace{100};
constexpr std::chrono::milliseconds kKillCheck{200};

std::string join_listen(const config::ServiceSpec& spec) {
    std::string out;
    for (const auto& a : spec.listen) {
        if (!out.empty()) out += ',';
        out += a.to_string();
    }
    return out.empty() ? "-" : out;
}

long long ms_since(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
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
    s->procs.resize(static_cast<size_t>(count));
    s->respawn.assign(s->procs.size(), false);
    s->last_start.assign(s->procs.size(), Clock::time_point{});
    s->died.assign(s->procs.size(), Death{});
    s->restart_timer = event::timer(base_, [this, name](short) { fill_empty_slots(name); });
    s->respawn_timer = event::timer(base_, [this, name](short) { respawn_due(name); });
    Service& ref = *s;
    services_[name] = std::move(s);
    if (std::find(order_.begin(), order_.end(), name) == order_.end()) order_.push_back(name);
    for (size_t i = 0; i < ref.procs.size(); ++i) start_slot(ref, i);
}

std::vector<Fd> Supervisor::remove(const std::string& name) {
    auto it = services_.find(name);
    if (it == services_.end()) return {};
    std::vector<Fd> listeners = std::move(it->second->listeners);
    for (const Process& p : it->second->procs)
        if (p.pid > 0) retire(p.pid);
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
    s.respawn[slot] = false;
    s.last_start[slot] = Clock::now();
    auto plan = plan_for(s.spec, daemon_directory_, config_dir_, s.listeners, s.listener_names, root_);
    auto pid = spawn_worker(plan);
    if (!pid) {
        // A worker that cannot even start is a crash like any other, so a
        // missing program or user ends up throttled, not in a fork loop.
        log::warning("service %s: cannot start %s: %s", s.spec.name.c_str(), plan.program.c_str(),
                     pid.message().c_str());
        s.procs[slot] = Process{};
        s.last_crash = pid.message() + " at start-up";
        s.crashes.push_back(Clock::now());
        on_crash(s, slot, -1);
        return;
    }
    Process& p = s.procs[slot];
    p = Process{};
    p.pid = pid->pid;
    p.started = Clock::now();
    if (Death& d = s.died[slot]; d.pid != 0) {
        p.replaces = d.pid;
        p.replaced_died = d.reaped;
        d = Death{};
    }
    p.ready_pipe = std::move(pid->ready);
    p.ready_watch = event::Watch(base_, p.ready_pipe.get(), EV_READ | EV_PERSIST,
                                 [this, name = s.spec.name, slot, child = p.pid](short) {
                                     on_ready_pipe(name, slot, child);
                                 });
    p.ready_watch.add();
    log::debug("service %s: started %s pid %d", s.spec.name.c_str(), plan.program.c_str(),
               static_cast<int>(p.pid));
}

// Reads whatever a dead worker left in its readiness pipe (non-blocking:
// the read end is O_NONBLOCK, see spawn.cpp).
bool Supervisor::said_ready(const Process& p) {
    if (!p.ready_pipe) return false;
    char buf[64];
    ssize_t n = ::read(p.ready_pipe.get(), buf, sizeof buf);
    return n > 0 && std::string_view(buf, static_cast<size_t>(n)).find("ready") != std::string_view::npos;
}

// The worker wrote on (or closed) its readiness pipe.  The watch is only
// deleted here, never destroyed: this runs inside its callback.
void Supervisor::on_ready_pipe(const std::string& name, size_t slot, pid_t pid) {
    auto it = services_.find(name);
    if (it == services_.end() || slot >= it->second->procs.size()) return;
    Process& p = it->second->procs[slot];
    if (p.pid != pid || !p.ready_pipe) return;
    char buf[64];
    ssize_t n = ::read(p.ready_pipe.get(), buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n > 0 && std::string_view(buf, static_cast<size_t>(n)).find("ready") != std::string_view::npos) {
        p.ready = true;
        if (p.replaces)
            log::info("service %s: pid %d ready, %lld ms after pid %d exited", name.c_str(), static_cast<int>(pid),
                      ms_since(p.replaced_died), static_cast<int>(p.replaces));
        else
            log::debug("service %s: pid %d ready", name.c_str(), static_cast<int>(pid));
    } else if (n > 0) {
        return;  // not our word; wait for more or EOF
    } else {
        // EOF (or an error) before "ready": the worker exited, which the
        // SIGCHLD reaping reports as a crash, or closed the pipe without a
        // word, which leaves it "starting" for everyone to see.
        log::debug("service %s: pid %d closed its readiness pipe before it was ready", name.c_str(),
                   static_cast<int>(pid));
    }
    p.ready_watch.del();
    p.ready_pipe.reset();
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
    for (size_t i = 0; i < s.procs.size(); ++i) {
        if (s.procs[i].pid == 0) {
            ++s.restarts;
            start_slot(s, i);
            // start_slot may have throttled the service or scheduled a retry.
            if (s.throttled || s.restart_timer.pending()) break;
        }
    }
}

// A ready worker died: refill its slot now, or at the pace limit.  Not a
// start-up crash, so neither counted nor backed off (see supervisor.hpp).
void Supervisor::respawn_slot(Service& s, size_t slot, Death death) {
    if (stopping_) return;
    if (death.pid != 0) s.died[slot] = death;
    if (s.throttled) return;  // the throttle timer refills every empty slot
    auto due = s.last_start[slot] + kRespawnPace;
    auto now = Clock::now();
    if (due <= now) {
        ++s.restarts;
        const Death d = s.died[slot];
        start_slot(s, slot);
        if (d.pid != 0 && s.procs[slot].pid != 0)
            log::info("service %s: pid %d replaces pid %d, started %s (%lld ms after its exit)",
                      s.spec.name.c_str(), static_cast<int>(s.procs[slot].pid), static_cast<int>(d.pid),
                      death.pid != 0 ? "at once" : "after the restart pace", ms_since(d.reaped));
        return;
    }
    s.respawn[slot] = true;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(due - now) + std::chrono::milliseconds(1);
    // A pending timer is never more than kRespawnPace away; respawn_due
    // re-arms it for slots not due yet.
    if (!s.respawn_timer.pending()) s.respawn_timer.add(std::min(wait, kRespawnPace));
}

void Supervisor::respawn_due(const std::string& name) {
    auto it = services_.find(name);
    if (it == services_.end()) return;
    Service& s = *it->second;
    for (size_t i = 0; i < s.procs.size(); ++i) {
        if (!s.respawn[i]) continue;
        s.respawn[i] = false;
        if (s.procs[i].pid == 0) respawn_slot(s, i, Death{});  // starts it, or sets the flag and timer again
    }
}

// Common path of a start-up crash (exit before ready, or failed start):
// prune the crash window, throttle or schedule the restart.  The crash was
// already pushed.
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
        s.throttled_until = now + limits_.backoff_max;
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
            for (size_t i = 0; i < s.procs.size(); ++i) {
                if (s.procs[i].pid != pid) continue;
                found = true;
                // A worker that wrote "ready" and died at once: the word
                // may still sit unread in the pipe when SIGCHLD comes first.
                bool was_ready = s.procs[i].ready || said_ready(s.procs[i]);
                // Not inside this slot's watch callback (SIGCHLD's), so the
                // watch may be destroyed here.
                s.procs[i] = Process{};
                std::string reason = describe_exit(status);
                if (stopping_) break;
                // Postfix: "warning: process /usr/libexec/postfix/smtpd pid 123 exit status 1"
                log::warning("process %s pid %d %s%s", program_path(s.spec).c_str(),
                             static_cast<int>(pid), reason.c_str(),
                             was_ready ? "" : " before it was ready");
                if (was_ready) {
                    s.last_crash = reason;
                    respawn_slot(s, i, Death{pid, Clock::now()});
                    break;
                }
                s.last_crash = reason + " at start-up";
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
        sp->respawn_timer.del();
        for (Process& p : sp->procs) {
            if (p.pid > 0) retire(p.pid);
            p = Process{};
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
        size_t ready = 0;
        for (const Process& p : s.procs)
            if (p.pid > 0 && p.ready) ++ready;
        std::string state = s.throttled ? "throttled" : ready == s.procs.size() ? "running" : "starting";
        reply.add("service", name);
        reply.add("state", state);
        reply.add("listen_type", s.spec.type == config::ListenType::Inet   ? "inet"
                          : s.spec.type == config::ListenType::Unix ? "unix"
                                                                    : "none");
        reply.add("listen", join_listen(s.spec));
        reply.add("user", s.spec.user);
        reply.add("command", program_path(s.spec));
        reply.add_int("procs", static_cast<int64_t>(s.procs.size()));
        for (const Process& p : s.procs) {
            if (p.pid <= 0) continue;
            reply.add("process", std::to_string(p.pid) + " " + std::to_string(seconds_since(p.started)) +
                                     (p.ready ? " ready" : " starting"));
        }
        reply.add_int("restarts", s.restarts);
        reply.add_int("throttled", s.throttled ? 1 : 0);
        reply.add("last_crash", s.last_crash);
        // Start-up crashes still inside the crash window (what throttles),
        // and while throttled the seconds until the service is tried again.
        auto now = Clock::now();
        int64_t recent = std::count_if(s.crashes.begin(), s.crashes.end(),
                                       [&](Clock::time_point t) { return now - t <= limits_.crash_window; });
        reply.add_int("startup_crashes", recent);
        if (s.throttled) {
            auto left = std::chrono::duration_cast<std::chrono::seconds>(s.throttled_until - now).count();
            reply.add_int("retry_in", std::max<int64_t>(left, 0));
        }
    }
}

}  // namespace tern::master
