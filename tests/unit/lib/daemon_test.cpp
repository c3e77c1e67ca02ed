// Tests of lib/daemon/worker: the worker command line and the systemd
// socket-passing convention (valid, boundary and hostile environments).
// Fd juggling on 3, 4, ... happens in a forked child so the test runner's
// own descriptors are never touched.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>

#include "lib/daemon/systemd.hpp"
#include "lib/daemon/worker.hpp"

using namespace tern;

namespace {

// Runs fn in a child; true when it returned true.
bool in_child(const std::function<bool()>& fn) {
    pid_t pid = fork();
    if (pid == 0) _exit(fn() ? 0 : 1);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Puts n open pipe ends on fds 3 .. 3+n-1.
bool place_fds(int n) {
    for (int k = 0; k < n; ++k) {
        int p[2];
        if (pipe(p) != 0) return false;
        if (p[0] != 3 + k && dup2(p[0], 3 + k) < 0) return false;
    }
    return true;
}

std::string temp_config_dir(const std::string& text) {
    char tmpl[] = "/tmp/tern-daemon-test-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    std::ofstream(dir + "/tern.conf") << text;
    return dir;
}

}  // namespace

TEST_CASE("daemon: passed sockets are taken when LISTEN_PID is ours", "[daemon]") {
    CHECK(in_child([] {
        if (!place_fds(2)) return false;
        setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
        setenv("LISTEN_FDS", "2", 1);
        setenv("LISTEN_FDNAMES", "smtp:smtp", 1);
        std::vector<Fd> fds;
        std::vector<std::string> names;
        auto st = daemon::take_listen_fds(fds, names);
        bool ok = st.ok() && fds.size() == 2 && fds[0].get() == 3 && fds[1].get() == 4 && names.size() == 2;
        ok = ok && (fcntl(3, F_GETFD) & FD_CLOEXEC);
        ok = ok && !getenv("LISTEN_PID") && !getenv("LISTEN_FDS") && !getenv("LISTEN_FDNAMES");
        for (auto& fd : fds) fd.release();
        return ok;
    }));
}

TEST_CASE("daemon: names from LISTEN_FDNAMES", "[daemon]") {
    CHECK(in_child([] {
        if (!place_fds(2)) return false;
        setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
        setenv("LISTEN_FDS", "2", 1);
        setenv("LISTEN_FDNAMES", "smtp:submission", 1);
        std::vector<Fd> fds;
        std::vector<std::string> names;
        auto st = daemon::take_listen_fds(fds, names);
        for (auto& fd : fds) fd.release();
        return st.ok() && names == std::vector<std::string>{"smtp", "submission"};
    }));
}

TEST_CASE("daemon: sockets meant for another pid are left alone", "[daemon]") {
    CHECK(in_child([] {
        if (!place_fds(1)) return false;
        setenv("LISTEN_PID", std::to_string(getpid() + 1).c_str(), 1);
        setenv("LISTEN_FDS", "1", 1);
        std::vector<Fd> fds;
        std::vector<std::string> names;
        auto st = daemon::take_listen_fds(fds, names);
        return st.ok() && fds.empty() && !getenv("LISTEN_FDS") && fcntl(3, F_GETFD) >= 0;
    }));
}

TEST_CASE("daemon: hostile LISTEN_* values are errors, never crashes", "[daemon]") {
    for (const char* count : {"abc", "-1", "99999999999", "", "1x", "5000"}) {
        INFO(count);
        CHECK(in_child([count] {
            setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
            setenv("LISTEN_FDS", count, 1);
            std::vector<Fd> fds;
            std::vector<std::string> names;
            auto st = daemon::take_listen_fds(fds, names);
            return !st.ok() && fds.empty();
        }));
    }
    // Claims an fd that is not open.
    CHECK(in_child([] {
        for (int fd = 3; fd < 64; ++fd) close(fd);
        setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
        setenv("LISTEN_FDS", "3", 1);
        std::vector<Fd> fds;
        std::vector<std::string> names;
        auto st = daemon::take_listen_fds(fds, names);
        return !st.ok() && st.message().find("not open") != std::string::npos;
    }));
    // No LISTEN_FDS at all: no sockets, no error.
    CHECK(in_child([] {
        unsetenv("LISTEN_FDS");
        std::vector<Fd> fds;
        std::vector<std::string> names;
        return daemon::take_listen_fds(fds, names).ok() && fds.empty();
    }));
}

TEST_CASE("daemon: worker command line", "[daemon]") {
    std::string dir = temp_config_dir("myhostname = mx.example.org\n");
    std::string o = "-o";
    auto parse = [&](std::vector<std::string> args) {
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        return daemon::parse_worker_args(static_cast<int>(args.size()), argv.data(), "smtpd");
    };
    auto ok = parse({"smtpd", "-c", dir, "-s", "submission", "-o", "smtpd_mode=submission", "extra"});
    REQUIRE(ok.ok());
    CHECK(ok->service == "submission");
    CHECK(ok->config.get("smtpd_mode") == "submission");
    CHECK(ok->config.get("myhostname") == "mx.example.org");
    CHECK(ok->args == std::vector<std::string>{"extra"});

    auto plain = parse({"smtpd", "-c", dir});
    REQUIRE(plain.ok());
    CHECK(plain->service == "smtpd");

    CHECK(parse({"smtpd", "--help"}).message() == "help");
    CHECK(!parse({"smtpd", "-c"}).ok());
    CHECK(!parse({"smtpd", "-c", dir, "-x"}).ok());
    CHECK(!parse({"smtpd", "-c", dir, "-o", "no_such_key=1"}).ok());
    CHECK(!parse({"smtpd", "-c", dir, "-o", "novalue"}).ok());

    std::string bad = temp_config_dir("no_such_key = 1\n");
    auto broken = parse({"smtpd", "-c", bad});
    REQUIRE(!broken.ok());
    CHECK(broken.message().find("tern.conf:1:") != std::string::npos);
    CHECK(daemon::worker_usage("smtpd").find("usage: smtpd") == 0);
    std::remove((dir + "/tern.conf").c_str());
    std::remove((bad + "/tern.conf").c_str());
    rmdir(dir.c_str());
    rmdir(bad.c_str());
}

// ---- systemd integration (lib/daemon/systemd) ----

TEST_CASE("systemd: the unit a cgroup file names", "[daemon][systemd]") {
    using tern::daemon::unit_from_cgroup;
    CHECK(unit_from_cgroup("0::/system.slice/tern.service\n") == "tern.service");
    CHECK(unit_from_cgroup("0::/system.slice/tern.service/workers\n") == "tern.service");
    CHECK(unit_from_cgroup("12:cpu:/x\n1:name=systemd:/system.slice/postfix@-.service\n") == "postfix@-.service");
    CHECK(unit_from_cgroup("0::/user.slice/user-1000.slice/session-3.scope\n") == "");
    CHECK(unit_from_cgroup("0::/\n") == "");
    CHECK(unit_from_cgroup("") == "");
    CHECK(unit_from_cgroup("garbage without colons .service") == "");
}

TEST_CASE("systemd: notify sends one datagram to NOTIFY_SOCKET and hides it from children", "[daemon][systemd]") {
    std::string path = "/tmp/tern-notify-" + std::to_string(::getpid());
    ::unlink(path.c_str());
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
    auto n = tern::daemon::SystemdNotifier::from_environment();
    CHECK(std::getenv("NOTIFY_SOCKET") == nullptr);
    REQUIRE(n.active());
    CHECK(n.notify("READY=1\nMAINPID=42"));
    char buf[128] = {};
    ssize_t got = ::recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    CHECK(std::string(buf, got > 0 ? static_cast<size_t>(got) : 0) == "READY=1\nMAINPID=42");
    ::close(fd);
    ::unlink(path.c_str());

    ::setenv("NOTIFY_SOCKET", "relative/path", 1);  // invalid: ignored, as sd_notify does
    auto none = tern::daemon::SystemdNotifier::from_environment();
    CHECK_FALSE(none.active());
    CHECK_FALSE(none.notify("READY=1"));
}
