// Worker start-up (command line, config, logging, passed sockets) and the
// standard signal-driven main loop.  See worker.hpp.
#include "lib/daemon/worker.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "lib/event/loop.hpp"
#include "lib/log/log.hpp"

namespace tern::daemon {
namespace {

constexpr int kFirstListenFd = 3;  // SD_LISTEN_FDS_START
constexpr int kMaxListenFds = 1024;

// The readiness pipe between start_worker() and notify_ready(): one per
// process, so a file-level owner is the honest shape.
Fd g_ready_pipe;

Result<int> parse_count(const char* text, const char* what) {
    if (!text || !*text) return make_error(std::string(what) + " is empty");
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(text, &end, 10);
    if (errno || *end || v < 0 || v > 0x7fffffff)
        return make_error(std::string(what) + " is not a number: '" + text + "'");
    return static_cast<int>(v);
}

std::vector<std::string> split_names(const char* text) {
    std::vector<std::string> out;
    if (!text) return out;
    std::string s = text, cur;
    for (char c : s) {
        if (c == ':') {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

}  // namespace

std::string worker_usage(std::string_view program, std::string_view extra_usage) {
    std::string u = "usage: " + std::string(program) +
                    " [-c CONFIG_DIR] [-s SERVICE_NAME] [-o key=value]...";
    if (!extra_usage.empty()) u += " " + std::string(extra_usage);
    u += "\n\n"
         "A tern worker daemon; normally started by master (see services.conf).\n"
         "  -c DIR        configuration directory (default: $TERN_CONFIG_DIR, /etc/tern)\n"
         "  -s NAME       the services.conf service this process serves\n"
         "  -o key=value  override a tern.conf key for this process (repeatable)\n"
         "  -h, --help    this text\n"
         "Listening sockets arrive by the systemd convention (LISTEN_FDS, LISTEN_PID,\n"
         "LISTEN_FDNAMES, fds from 3).  Exit status: 0 after a clean stop, 1 on error.\n";
    return u;
}

Result<WorkerContext> parse_worker_args(int argc, char** argv, std::string_view program) {
    WorkerContext ctx;
    std::string dir_flag;
    std::vector<std::string> overrides;
    int i = 1;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") return make_error("help");
        if (a == "--") {
            ++i;
            break;
        }
        if (a == "-c" || a == "-s" || a == "-o") {
            if (i + 1 >= argc) return make_error("option " + a + " needs a value");
            std::string v = argv[++i];
            if (a == "-c") dir_flag = v;
            else if (a == "-s") ctx.service = v;
            else overrides.push_back(v);
            continue;
        }
        if (a.size() > 1 && a[0] == '-') return make_error("unknown option '" + a + "'");
        break;
    }
    for (; i < argc; ++i) ctx.args.emplace_back(argv[i]);
    if (ctx.service.empty()) ctx.service = std::string(program);

    auto loaded = config::Config::load(config::config_dir_from(dir_flag));
    if (!loaded) return loaded.error();
    ctx.config = std::move(loaded).value();
    for (const auto& o : overrides) {
        auto st = ctx.config.apply_override(o);
        if (!st) return make_error("-o " + o + ": " + st.message());
    }
    return ctx;
}

Status take_listen_fds(std::vector<Fd>& fds, std::vector<std::string>& names) {
    const char* pid_text = std::getenv("LISTEN_PID");
    const char* count_text = std::getenv("LISTEN_FDS");
    const char* names_text = std::getenv("LISTEN_FDNAMES");
    Status result;
    if (count_text) {
        auto pid = parse_count(pid_text, "LISTEN_PID");
        auto count = parse_count(count_text, "LISTEN_FDS");
        if (!pid) {
            result = pid.error();
        } else if (!count) {
            result = count.error();
        } else if (pid.value() != getpid()) {
            // The sockets were meant for another process (e.g. an inherited
            // environment); taking them would steal someone else's fds.
        } else if (count.value() > kMaxListenFds) {
            result = make_error("LISTEN_FDS too large: " + std::to_string(count.value()));
        } else {
            auto given = split_names(names_text);
            for (int k = 0; k < count.value(); ++k) {
                int fd = kFirstListenFd + k;
                if (fcntl(fd, F_GETFD) < 0) {
                    result = make_error("LISTEN_FDS says fd " + std::to_string(fd) +
                                        " is passed, but it is not open");
                    break;
                }
                fcntl(fd, F_SETFD, FD_CLOEXEC);
                fds.emplace_back(fd);
                names.push_back(static_cast<size_t>(k) < given.size() && names_text ? given[k] : "");
            }
        }
    }
    // sd_listen_fds(unset_environment=1): children must not see these.
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return result;
}

Result<Fd> take_ready_fd() {
    const char* text = std::getenv("TERN_READY_FD");
    if (!text) return Fd();
    std::string copy = text;
    // Children of the worker must not see (or write to) master's pipe.
    unsetenv("TERN_READY_FD");
    auto fd = parse_count(copy.c_str(), "TERN_READY_FD");
    if (!fd) return fd.error();
    if (fd.value() < kFirstListenFd)
        return make_error("TERN_READY_FD must be 3 or more, not " + copy);
    if (fcntl(fd.value(), F_GETFD) < 0)
        return make_error("TERN_READY_FD says fd " + copy + " is passed, but it is not open");
    fcntl(fd.value(), F_SETFD, FD_CLOEXEC);
    return Fd(fd.value());
}

void notify_ready() {
    if (!g_ready_pipe) return;
    // A master that died closed the read end: EPIPE, not a fatal SIGPIPE.
    signal(SIGPIPE, SIG_IGN);
    static const char kReady[] = "ready\n";
    ssize_t n;
    do {
        n = ::write(g_ready_pipe.get(), kReady, sizeof kReady - 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0) log::warning("cannot tell master this process is ready: %s", std::strerror(errno));
    g_ready_pipe.reset();
}

WorkerContext start_worker(int argc, char** argv, std::string_view program,
                           std::string_view extra_usage) {
    auto parsed = parse_worker_args(argc, argv, program);
    if (!parsed) {
        if (parsed.message() == "help") {
            std::fputs(worker_usage(program, extra_usage).c_str(), stdout);
            std::exit(0);
        }
        std::fprintf(stderr, "%.*s: fatal: %s\n", static_cast<int>(program.size()), program.data(),
                     parsed.message().c_str());
        std::fputs(worker_usage(program, extra_usage).c_str(), stderr);
        log::init(program, "syslog");
        log::fatal("%s", parsed.message().c_str());
    }
    WorkerContext ctx = std::move(parsed).value();
    log::init(program, ctx.config.get("log_target"));
    auto st = take_listen_fds(ctx.listeners, ctx.listener_names);
    if (!st) log::fatal("service %s: %s", ctx.service.c_str(), st.message().c_str());
    auto ready = take_ready_fd();
    if (!ready) log::fatal("service %s: %s", ctx.service.c_str(), ready.message().c_str());
    g_ready_pipe = std::move(ready).value();
    return ctx;
}

int run_loop(event_base* base, LoopHandlers handlers) {
    signal(SIGPIPE, SIG_IGN);
    notify_ready();
    event::Watch term, intr, hup;
    bool stopping = false;
    auto on_term = [&](short) {
        if (stopping || !handlers.on_stop) {
            event_base_loopexit(base, nullptr);
            return;
        }
        stopping = true;
        // The loop ends by itself once the worker's own events are gone; our
        // persistent signal watches must not keep it alive.  A second
        // SIGTERM during the drain then terminates the process at once.
        term.del();
        intr.del();
        if (hup) hup.del();
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_IGN);
        handlers.on_stop();
    };
    term = event::signal_watch(base, SIGTERM, on_term);
    intr = event::signal_watch(base, SIGINT, on_term);
    term.add();
    intr.add();
    if (handlers.on_reload) {
        hup = event::signal_watch(base, SIGHUP, [&](short) { handlers.on_reload(); });
        hup.add();
    } else {
        signal(SIGHUP, SIG_IGN);
    }
    return event_base_dispatch(base) < 0 ? 1 : 0;
}

}  // namespace tern::daemon
