// Fork + exec of one worker, with the systemd socket-passing convention.
// See spawn.hpp.  Master is single-threaded, so the child may allocate
// between fork and exec; everything it needs is still prepared beforehand.
#include "master/spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "lib/core/errno_text.hpp"
#include "lib/sys/privileges.hpp"

namespace tern::master {
namespace {

[[noreturn]] void child_fail(int errfd, const std::string& message) {
    size_t off = 0;
    while (off < message.size()) {
        ssize_t n = ::write(errfd, message.data() + off, message.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += static_cast<size_t>(n);
    }
    _exit(127);
}

void close_from(unsigned first, unsigned keep) {
    // close_range(2) where the kernel has it; a /proc-free loop otherwise.
    auto close_span = [](unsigned lo, unsigned hi) {
        if (lo > hi) return;
        if (close_range(lo, hi, 0) == 0) return;
        long max = sysconf(_SC_OPEN_MAX);
        unsigned top = hi;
        if (max > 0 && static_cast<unsigned long>(max) <= hi) top = static_cast<unsigned>(max - 1);
        for (unsigned fd = lo; fd <= top; ++fd) ::close(static_cast<int>(fd));
    };
    if (keep >= first) {
        if (keep > first) close_span(first, keep - 1);
        close_span(keep + 1, ~0U);
    } else {
        close_span(first, ~0U);
    }
}

// Runs in the child; never returns.
[[noreturn]] void exec_child(const SpawnPlan& plan, int errw, int readyw, pid_t master_pid,
                             const std::vector<char*>& argv) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGPIPE, SIGHUP, SIGTERM, SIGINT, SIGCHLD, SIGQUIT})
        signal(sig, SIG_DFL);

    const int n = static_cast<int>(plan.listeners.size());
    const int ready_fd = 3 + n;  // right after the listeners
    const int above = ready_fd + 1;
    int errfd = fcntl(errw, F_DUPFD_CLOEXEC, above);
    if (errfd < 0) _exit(127);
    // Move every listener (and the readiness pipe) above the target range
    // first, so that dup2 onto 3.. can never clobber one still to be moved.
    std::vector<int> moved;
    for (int fd : plan.listeners) {
        int m = fcntl(fd, F_DUPFD_CLOEXEC, above);
        if (m < 0) child_fail(errfd, errno_error("dup listening socket").message);
        moved.push_back(m);
    }
    int ready_moved = fcntl(readyw, F_DUPFD_CLOEXEC, above);
    if (ready_moved < 0) child_fail(errfd, errno_error("dup readiness pipe").message);
    for (int k = 0; k < n; ++k) {
        if (dup2(moved[k], 3 + k) < 0) child_fail(errfd, errno_error("dup2 listening socket").message);
    }
    // dup2 clears close-on-exec: the worker inherits exactly these fds.
    if (dup2(ready_moved, ready_fd) < 0) child_fail(errfd, errno_error("dup2 readiness pipe").message);
    close_from(static_cast<unsigned>(above), static_cast<unsigned>(errfd));

    if (plan.drop) {
        auto st = sys::drop_privileges(plan.user);
        if (!st) child_fail(errfd, "cannot drop privileges to user " + plan.user + ": " + st.message());
    }
    // After the drop: changing credentials clears the parent-death signal.
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        child_fail(errfd, errno_error("prctl(PR_SET_PDEATHSIG)").message);
    if (getppid() != master_pid) _exit(0);  // master already died

    std::string names;
    for (size_t i = 0; i < plan.listener_names.size(); ++i) {
        if (i) names += ':';
        names += plan.listener_names[i];
    }
    if (n > 0) {
        setenv("LISTEN_FDS", std::to_string(n).c_str(), 1);
        setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
        setenv("LISTEN_FDNAMES", names.c_str(), 1);
    } else {
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDNAMES");
    }
    setenv("TERN_READY_FD", std::to_string(ready_fd).c_str(), 1);
    execv(plan.program.c_str(), argv.data());
    child_fail(errfd, errno_error("exec " + plan.program).message);
}

}  // namespace

SpawnPlan plan_for(const config::ServiceSpec& spec, const std::string& daemon_directory,
                   const std::string& config_dir, const std::vector<Fd>& listeners,
                   const std::vector<std::string>& listener_names, bool running_as_root) {
    SpawnPlan plan;
    plan.program = daemon_directory + "/" + spec.command;
    plan.argv = {spec.command, "-c", config_dir, "-s", spec.name};
    plan.argv.insert(plan.argv.end(), spec.args.begin(), spec.args.end());
    for (const auto& fd : listeners) plan.listeners.push_back(fd.get());
    plan.listener_names = listener_names;
    plan.user = spec.user;
    plan.drop = running_as_root;
    return plan;
}

Result<Spawned> spawn_worker(const SpawnPlan& plan) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) return errno_error("pipe");
    Fd errr(pipefd[0]), errw(pipefd[1]);
    if (pipe2(pipefd, O_CLOEXEC) != 0) return errno_error("readiness pipe");
    Fd readyr(pipefd[0]), readyw(pipefd[1]);
    // Master's event loop reads it; a worker that exits closes it (EOF).
    int fl = fcntl(readyr.get(), F_GETFL);
    if (fl < 0 || fcntl(readyr.get(), F_SETFL, fl | O_NONBLOCK) < 0)
        return errno_error("readiness pipe: O_NONBLOCK");

    std::vector<char*> argv;
    for (const auto& a : plan.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t master_pid = getpid();

    pid_t pid = fork();
    if (pid < 0) return errno_error("fork");
    if (pid == 0) exec_child(plan, errw.get(), readyw.get(), master_pid, argv);

    errw.reset();
    // Only the worker may hold the write end, or EOF would never come.
    readyw.reset();
    // EOF means exec succeeded (the pipe is close-on-exec); bytes are the
    // child's reason for giving up.  Bounded: exec is quick or has failed.
    std::string reason;
    char buf[512];
    for (int rounds = 0; rounds < 100; ++rounds) {
        pollfd p{errr.get(), POLLIN, 0};
        int r = poll(&p, 1, 100);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        ssize_t got = ::read(errr.get(), buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        reason.append(buf, static_cast<size_t>(got));
    }
    if (!reason.empty()) {
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        return make_error(reason);
    }
    Spawned out;
    out.pid = pid;
    out.ready = std::move(readyr);
    return out;
}

std::string describe_exit(int wait_status) {
    if (WIFEXITED(wait_status)) return "exit status " + std::to_string(WEXITSTATUS(wait_status));
    if (WIFSIGNALED(wait_status)) return "killed by signal " + std::to_string(WTERMSIG(wait_status));
    return "stopped";
}

}  // namespace tern::master
