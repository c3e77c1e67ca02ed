// daemonize() and spawn(); see process.hpp.  Both use a close-on-exec pipe
// to carry a child's failure back: for spawn, a successful exec closes the
// pipe with nothing written, so the parent knows the program is running.
#include "lib/sys/process.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "lib/core/errno_text.hpp"

extern char** environ;

namespace tern::sys {

namespace {
std::atomic<pid_t> g_pid{0};
void forget_pid() { g_pid.store(0, std::memory_order_relaxed); }
}  // namespace

pid_t own_pid() {
    static const int registered = pthread_atfork(nullptr, nullptr, &forget_pid);
    (void)registered;
    pid_t pid = g_pid.load(std::memory_order_relaxed);
    if (pid == 0) {
        pid = ::getpid();
        g_pid.store(pid, std::memory_order_relaxed);
    }
    return pid;
}

namespace {

void write_quietly(int fd, const std::string& text) {
    size_t off = 0;
    while (off < text.size()) {
        ssize_t n = ::write(fd, text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        off += static_cast<size_t>(n);
    }
}

std::string read_to_eof(int fd) {
    std::string out;
    char buf[1024];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > 65536) break;
    }
    return out;
}

}  // namespace

void ReadyNotifier::ready() {
    if (!pipe_) return;
    write_quietly(pipe_.get(), "ready\n");
    pipe_.reset();
}

void ReadyNotifier::failed(const std::string& message) {
    if (!pipe_) return;
    write_quietly(pipe_.get(), "error: " + message + "\n");
    pipe_.reset();
}

Result<ReadyNotifier> daemonize() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return errno_error("pipe");
    Fd read_end(fds[0]), write_end(fds[1]);
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) return errno_error("fork");
    if (pid > 0) {
        // Original process: wait for the daemon's verdict.
        write_end.reset();
        std::string verdict = read_to_eof(read_end.get());
        int status;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (verdict.rfind("ready", 0) == 0) ::_exit(0);
        if (verdict.rfind("error: ", 0) == 0) {
            write_quietly(2, verdict);
        } else {
            write_quietly(2, "error: daemon exited before it was ready\n");
        }
        ::_exit(1);
    }
    read_end.reset();
    if (::setsid() < 0) {
        write_quietly(write_end.get(), std::string("error: setsid: ") + std::strerror(errno) + "\n");
        ::_exit(1);
    }
    // Second fork: the session leader exits, so the daemon can never
    // reacquire a controlling terminal.
    pid = ::fork();
    if (pid < 0) {
        write_quietly(write_end.get(), std::string("error: fork: ") + std::strerror(errno) + "\n");
        ::_exit(1);
    }
    if (pid > 0) ::_exit(0);
    if (::chdir("/") != 0) {
        write_quietly(write_end.get(), std::string("error: chdir /: ") + std::strerror(errno) + "\n");
        ::_exit(1);
    }
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
        if (null > 2) ::close(null);
    }
    return ReadyNotifier(std::move(write_end));
}

Result<pid_t> spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    const ChildSetup& setup) {
    if (argv.empty()) return make_error("spawn: empty command");
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    std::vector<char*> cenv;
    for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
    cenv.push_back(nullptr);

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return errno_error("pipe");
    Fd read_end(fds[0]), write_end(fds[1]);
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) return errno_error("fork");
    if (pid == 0) {
        read_end.reset();
        // Signals the parent ignored or blocked must not leak into the program.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        if (setup) {
            Status s = setup();
            if (!s) {
                write_quietly(write_end.get(), s.message());
                ::_exit(127);
            }
        }
        char** envp = env.empty() ? environ : cenv.data();
        if (argv[0].find('/') != std::string::npos)
            ::execve(cargv[0], cargv.data(), envp);
        else
            ::execvpe(cargv[0], cargv.data(), envp);
        write_quietly(write_end.get(), "exec " + argv[0] + ": " + std::strerror(errno));
        ::_exit(127);
    }
    write_end.reset();
    std::string failure = read_to_eof(read_end.get());
    if (!failure.empty()) {
        int status;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        return make_error(failure);
    }
    return pid;
}

std::string describe_exit(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        std::string s = "killed by signal " + std::to_string(WTERMSIG(status));
        if (WCOREDUMP(status)) s += " (core dumped)";
        return s;
    }
    return "stopped (status " + std::to_string(status) + ")";
}

}  // namespace tern::sys
