// Starting a backend process as a system user: see backend.hpp.
#include "user-session/backend.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "lib/core/errno_text.hpp"

namespace tern::usersession {
namespace {

[[noreturn]] void child_fail(int pipe_fd, const std::string& what) {
    (void)!::write(pipe_fd, what.data(), what.size());
    ::_exit(127);
}

// True when every capability set of this process is empty.
bool no_capabilities() {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    if (::syscall(SYS_capget, &header, data) != 0) return false;
    for (const auto& d : data)
        if (d.effective || d.permitted || d.inheritable) return false;
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap)
        if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1) return false;
    return true;
}

[[noreturn]] void run_child(BackendSpec& spec, int program_fd, int pipe_fd) {
    // The client socket as fd 3 (LISTEN_FDS convention), nothing else open
    // but the error pipe (close-on-exec) and the program.
    int client = spec.client.release();
    if (client != 3) {
        if (::dup2(client, 3) < 0) child_fail(pipe_fd, "dup2: " + std::string(std::strerror(errno)));
        ::close(client);
    } else {
        ::fcntl(3, F_SETFD, 0);
    }
    for (int fd = 4; fd < 1024; ++fd)
        if (fd != pipe_fd && fd != program_fd) ::close(fd);
    // The user cannot open tern's log file: it gets it as stderr instead
    // (and -o log_target=stderr).
    if (!spec.log_file.empty()) {
        int log = ::open(spec.log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY | O_CLOEXEC, 0640);
        if (log >= 0 && log != 2) {
            ::dup2(log, 2);
            ::close(log);
        }
    }
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap)
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            child_fail(pipe_fd, "dropping capability " + std::to_string(cap) + ": " + std::strerror(errno));
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        child_fail(pipe_fd, "PR_SET_NO_NEW_PRIVS: " + std::string(std::strerror(errno)));
    if (Status s = sys::drop_to(spec.user); !s) child_fail(pipe_fd, s.message());
    if (::getuid() != spec.user.uid || ::geteuid() != spec.user.uid) child_fail(pipe_fd, "uid did not change");
    if (!no_capabilities()) child_fail(pipe_fd, "capabilities left after the drop");
    if (::chdir(spec.user.home.c_str()) != 0)
        child_fail(pipe_fd, "chdir " + spec.user.home + ": " + std::strerror(errno));

    std::vector<std::string> env = {
        "PATH=/usr/bin:/bin",
        "HOME=" + spec.user.home,
        "USER=" + spec.user.name,
        "LOGNAME=" + spec.user.name,
        "LISTEN_FDS=1",
        "LISTEN_FDNAMES=client",
        "LISTEN_PID=" + std::to_string(::getpid()),
    };
    // Sanitizer builds (make SANITIZE=1) keep their options.
    for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"})
        if (const char* v = std::getenv(name)) env.push_back(std::string(name) + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = {spec.program};
    args.insert(args.end(), spec.args.begin(), spec.args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::syscall(SYS_execveat, program_fd, "", argv.data(), envp.data(), AT_EMPTY_PATH);
    child_fail(pipe_fd, "exec " + spec.program + ": " + std::strerror(errno));
}

}  // namespace

Result<pid_t> start_backend(BackendSpec spec) {
    if (spec.user.uid == 0) return Error{"refusing to start a backend as root"};
    if (::geteuid() != 0) return Error{"user-session does not run as root"};
    Fd opened(::open(spec.program.c_str(), O_PATH | O_CLOEXEC));
    if (!opened) return errno_error("open " + spec.program);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return errno_error("pipe");
    Fd reader(p[0]), first_writer(p[1]);
    // Above fd 3, which the child gives to the client socket.
    Fd program(::fcntl(opened.get(), F_DUPFD_CLOEXEC, 10));
    Fd writer(::fcntl(first_writer.get(), F_DUPFD_CLOEXEC, 10));
    if (!program || !writer) return errno_error("fcntl F_DUPFD");
    opened.reset();
    first_writer.reset();
    pid_t pid = ::fork();
    if (pid < 0) return errno_error("fork");
    if (pid == 0) {
        reader.reset();
        run_child(spec, program.get(), writer.get());
    }
    writer.reset();
    // EOF at exec (close-on-exec), or the child's reason before it exits.
    std::string failure;
    char buf[512];
    for (;;) {
        ssize_t n = ::read(reader.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        failure.append(buf, static_cast<size_t>(n));
        if (failure.size() > 4096) break;
    }
    if (!failure.empty()) return Error{failure};
    return pid;
}

}  // namespace tern::usersession
