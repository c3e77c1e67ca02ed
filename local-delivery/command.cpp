// Running |command deliveries: see command.hpp.
#include "local-delivery/command.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lib/core/fd.hpp"

namespace tern::local {
namespace {

constexpr size_t kMaxOutput = 1024;
constexpr size_t kChunk = 64 * 1024;

int64_t now_ms() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string first_line(const std::string& output) {
    std::string line = output.substr(0, output.find('\n'));
    for (char& c : line)
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    return line.substr(0, 200);
}

// In the child: become the user for good, set up stdio, exec the shell.
[[noreturn]] void exec_child(const CommandJob& job, int in_fd, int out_fd) {
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
    for (int fd = 3; fd < 1024; ++fd) ::close(fd);
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::geteuid() == 0 || ::getuid() == 0) {
        // Real, saved and effective ids all change: the command can never regain root.
        if (job.as.uid != 0) {
            gid_t gid = job.as.gid;
            if (::setgroups(1, &gid) != 0 || ::setgid(job.as.gid) != 0 || ::setuid(job.as.uid) != 0 ||
                ::setuid(0) == 0) {
                (void)!::write(2, "cannot switch user\n", 19);
                ::_exit(EX_TEMPFAIL);
            }
        }
    }
    if (job.as.home.empty() || ::chdir(job.as.home.c_str()) != 0) (void)!::chdir("/");
    std::vector<std::string> env = {"HOME=" + job.as.home, "USER=" + job.as.name, "LOGNAME=" + job.as.name,
                                    "SHELL=/bin/sh", "PATH=/usr/local/bin:/usr/bin:/bin"};
    env.insert(env.end(), job.env.begin(), job.env.end());
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const char* argv[] = {"/bin/sh", "-c", job.command.c_str(), nullptr};
    ::execve("/bin/sh", const_cast<char* const*>(argv), envp.data());
    ::_exit(EX_OSERR);
}

}  // namespace

DeliveryResult result_of_exit(int status, const std::string& output) {
    std::string said = first_line(output);
    auto with_output = [&](std::string text) { return said.empty() ? text : text + ": " + said; };
    if (WIFSIGNALED(status))
        return DeliveryResult::defer("4.3.0", "command killed by signal " + std::to_string(WTERMSIG(status)));
    if (!WIFEXITED(status)) return DeliveryResult::defer("4.3.0", "command ended abnormally");
    int code = WEXITSTATUS(status);
    switch (code) {
        case 0: return DeliveryResult::sent("delivered to command");
        case EX_TEMPFAIL: return DeliveryResult::defer("4.3.0", with_output("temporary failure (command exit 75)"));
        case EX_OSERR: return DeliveryResult::defer("4.3.0", with_output("system error (command exit 71)"));
        case EX_NOUSER: return DeliveryResult::bounce("5.1.1", with_output("unknown user (command exit 67)"));
        case EX_NOHOST: return DeliveryResult::bounce("5.1.2", with_output("unknown host (command exit 68)"));
        case EX_NOPERM: return DeliveryResult::bounce("5.7.0", with_output("permission denied (command exit 77)"));
        case EX_DATAERR: return DeliveryResult::bounce("5.6.0", with_output("data format error (command exit 65)"));
        case EX_CANTCREAT: return DeliveryResult::bounce("5.2.0", with_output("cannot create output (command exit 73)"));
        case EX_PROTOCOL: return DeliveryResult::bounce("5.5.0", with_output("protocol error (command exit 76)"));
        case EX_CONFIG: return DeliveryResult::bounce("5.3.5", with_output("configuration error (command exit 78)"));
        default:
            return DeliveryResult::bounce("5.3.0", with_output("command failed with exit status " + std::to_string(code)));
    }
}

DeliveryResult run_command(const CommandJob& job) {
    int in_pipe[2], out_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0) return DeliveryResult::defer("4.3.0", std::string("pipe: ") + std::strerror(errno));
    Fd in_read(in_pipe[0]), in_write(in_pipe[1]);
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) return DeliveryResult::defer("4.3.0", std::string("pipe: ") + std::strerror(errno));
    Fd out_read(out_pipe[0]), out_write(out_pipe[1]);

    pid_t pid = ::fork();
    if (pid < 0) return DeliveryResult::defer("4.3.0", std::string("fork: ") + std::strerror(errno));
    if (pid == 0) exec_child(job, in_read.get(), out_write.get());
    in_read.reset();
    out_write.reset();
    ::fcntl(in_write.get(), F_SETFL, O_NONBLOCK);
    ::fcntl(out_read.get(), F_SETFL, O_NONBLOCK);

    // Feed the message while collecting output, both non-blocking, so a
    // command that writes much before reading cannot deadlock us.
    std::string pending = job.prefix;
    uint64_t offset = 0;
    bool body_done = false;
    std::string output;
    int64_t deadline = now_ms() + job.time_limit.count() * 1000;
    bool timed_out = false;
    while (in_write || out_read) {
        if (in_write && pending.empty() && !body_done) {
            char buf[kChunk];
            auto n = read_at(*job.body, offset, buf, sizeof buf);
            if (!n) {
                ::kill(pid, SIGKILL);
                ::waitpid(pid, nullptr, 0);
                return DeliveryResult::defer("4.3.0", n.message());
            }
            if (*n == 0) body_done = true;
            offset += *n;
            pending.assign(buf, *n);
        }
        if (in_write && pending.empty() && body_done) in_write.reset();  // EOF for the command
        struct pollfd fds[2];
        int nfds = 0;
        if (in_write) fds[nfds++] = {in_write.get(), POLLOUT, 0};
        if (out_read) fds[nfds++] = {out_read.get(), POLLIN, 0};
        if (nfds == 0) break;
        int64_t left = deadline - now_ms();
        if (left <= 0) { timed_out = true; break; }
        int r = ::poll(fds, static_cast<nfds_t>(nfds), static_cast<int>(std::min<int64_t>(left, 1000)));
        if (r < 0 && errno != EINTR) break;
        for (int i = 0; i < nfds && r > 0; ++i) {
            if (fds[i].fd == in_write.get() && (fds[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
                ssize_t w = ::write(in_write.get(), pending.data(), pending.size());
                if (w > 0) pending.erase(0, static_cast<size_t>(w));
                else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    // The command stopped reading (EPIPE): what it did with
                    // the part it read is for its exit status to say.
                    in_write.reset();
                    pending.clear();
                    body_done = true;
                }
            } else if (fds[i].fd == out_read.get() && (fds[i].revents & (POLLIN | POLLERR | POLLHUP))) {
                char buf[4096];
                ssize_t n = ::read(out_read.get(), buf, sizeof buf);
                if (n > 0) {
                    if (output.size() < kMaxOutput) output.append(buf, std::min<size_t>(n, kMaxOutput - output.size()));
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                    out_read.reset();
                }
            }
        }
    }
    int status = 0;
    for (;;) {
        pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) break;
        if (done < 0 && errno != EINTR) return DeliveryResult::defer("4.3.0", "lost the command's exit status");
        if (timed_out || now_ms() >= deadline) {
            timed_out = true;
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            break;
        }
        ::usleep(10000);
    }
    if (timed_out)
        return DeliveryResult::defer("4.3.0", "command time limit exceeded (" + std::to_string(job.time_limit.count()) + "s)");
    return result_of_exit(status, output);
}

}  // namespace tern::local
