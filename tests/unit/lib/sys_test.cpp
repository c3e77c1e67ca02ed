// Tests for lib/sys: file helpers, lock files, spawn/daemonize, the
// privilege drop (proved for real in a forked child when running as root),
// and the SyncPool.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>

#include "lib/sys/clock.hpp"
#include "lib/sys/files.hpp"
#include "lib/sys/lock_file.hpp"
#include "lib/sys/privileges.hpp"
#include "lib/sys/process.hpp"
#include "lib/sys/sync_pool.hpp"

using namespace tern;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/tern-sys-test-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

int wait_exit(pid_t pid) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("sys: atomic write, read back, mkdir_p", "[sys]") {
    TempDir dir;
    std::string nested = dir.path + "/a/b/c";
    REQUIRE(sys::mkdir_p(nested, 0750).ok());
    REQUIRE(sys::mkdir_p(nested, 0750).ok());  // existing is fine
    struct stat st;
    REQUIRE(::stat(nested.c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));

    std::string file = nested + "/data";
    std::string content("line1\nbinary\0end", 16);
    REQUIRE(sys::write_file_atomic(file, content, 0600).ok());
    auto back = sys::read_file(file);
    REQUIRE(back.ok());
    CHECK(*back == content);
    REQUIRE(::stat(file.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(sys::write_file_atomic(file, "v2").ok());
    CHECK(*sys::read_file(file) == "v2");
    // No temporary file is left behind.
    int entries = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(nested)) ++entries;
    CHECK(entries == 1);

    CHECK_FALSE(sys::read_file(file, 1).ok());  // over the size limit
    auto missing = sys::read_file(dir.path + "/nope");
    REQUIRE_FALSE(missing.ok());
    CHECK_THAT(missing.message(), Catch::Contains("/nope"));
    CHECK_FALSE(sys::read_file(dir.path).ok());  // a directory
    CHECK_FALSE(sys::mkdir_p(file + "/sub").ok());  // a file in the way
    CHECK_FALSE(sys::write_file_atomic(dir.path + "/none/x", "y").ok());
    CHECK(sys::fsync_dir(dir.path).ok());
    CHECK_FALSE(sys::fsync_dir(dir.path + "/none").ok());

    CHECK(sys::dir_name("a/b/c") == "a/b");
    CHECK(sys::dir_name("c") == ".");
    CHECK(sys::dir_name("/c") == "/");
}

TEST_CASE("sys: fd flags and write_all", "[sys]") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    Fd r(fds[0]), w(fds[1]);
    REQUIRE(sys::set_nonblocking(r.get()).ok());
    CHECK((::fcntl(r.get(), F_GETFL) & O_NONBLOCK) != 0);
    REQUIRE(sys::set_nonblocking(r.get(), false).ok());
    CHECK((::fcntl(r.get(), F_GETFL) & O_NONBLOCK) == 0);
    REQUIRE(sys::set_cloexec(w.get()).ok());
    CHECK((::fcntl(w.get(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK_FALSE(sys::set_cloexec(-1).ok());
    REQUIRE(sys::write_all(w.get(), "hello").ok());
    char buf[8] = {};
    CHECK(::read(r.get(), buf, sizeof buf) == 5);
    CHECK(sys::now_s() > 1600000000);
    CHECK(sys::now_us() / 1000000 >= sys::now_s() - 1);
}

TEST_CASE("sys: a lock file refuses a second lock and names the holder", "[sys]") {
    TempDir dir;
    std::string path = dir.path + "/master.pid";
    {
        auto first = sys::LockFile::try_lock(path);
        REQUIRE(first.ok());
        CHECK(first->held());
        CHECK(*sys::read_file(path) == std::to_string(getpid()) + "\n");
        auto second = sys::LockFile::try_lock(path);
        REQUIRE_FALSE(second.ok());
        CHECK_THAT(second.message(), Catch::Contains("already locked by pid " + std::to_string(getpid())));
        CHECK(sys::LockFile::holder(path) == getpid());
    }
    // Released and removed with the owner.
    CHECK(sys::LockFile::holder(path) == 0);
    CHECK(::access(path.c_str(), F_OK) != 0);
    auto again = sys::LockFile::try_lock(path);
    CHECK(again.ok());
    CHECK_FALSE(sys::LockFile::try_lock(dir.path + "/no/such/dir.pid").ok());
}

TEST_CASE("sys: spawn runs a program and reports exec and setup failures", "[sys]") {
    auto pid = sys::spawn({"/bin/sh", "-c", "exit 3"});
    REQUIRE(pid.ok());
    CHECK(wait_exit(*pid) == 3);

    auto path_search = sys::spawn({"sh", "-c", "test \"$TERN_X\" = y"}, {"TERN_X=y", "PATH=/usr/bin:/bin"});
    REQUIRE(path_search.ok());
    CHECK(wait_exit(*path_search) == 0);

    auto missing = sys::spawn({"/nonexistent/tern-worker"});
    REQUIRE_FALSE(missing.ok());
    CHECK_THAT(missing.message(), Catch::Contains("exec /nonexistent/tern-worker"));

    auto bad_setup = sys::spawn({"/bin/true"}, {}, [] { return Status(make_error("setup refused")); });
    REQUIRE_FALSE(bad_setup.ok());
    CHECK(bad_setup.message() == "setup refused");
    CHECK_FALSE(sys::spawn({}).ok());

    CHECK(sys::describe_exit(3 << 8) == "exited with status 3");
    CHECK(sys::describe_exit(9) == "killed by signal 9");
}

TEST_CASE("sys: daemonize waits for the daemon's ready or error", "[sys]") {
    TempDir dir;
    for (bool succeed : {true, false}) {
        int err_pipe[2];
        REQUIRE(::pipe(err_pipe) == 0);
        std::string marker = dir.path + (succeed ? "/ready" : "/failed");
        pid_t test_session = getsid(0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::dup2(err_pipe[1], 2);
            auto notifier = sys::daemonize();  // the original child exits inside
            if (!notifier.ok()) _exit(2);
            // The daemon: in a new session but not its leader (so it can
            // never get a controlling terminal), cwd "/".
            bool session = getsid(0) != getpid() && getsid(0) != test_session;
            char cwd[8] = {};
            bool root_cwd = getcwd(cwd, sizeof cwd) && std::string(cwd) == "/";
            (void)sys::write_file_atomic(marker, session && root_cwd ? "ok" : "bad");
            if (succeed)
                notifier->ready();
            else
                notifier->failed("port 25 in use");
            _exit(0);
        }
        ::close(err_pipe[1]);
        int code = wait_exit(pid);
        std::string err;
        char buf[256];
        ssize_t n;
        while ((n = ::read(err_pipe[0], buf, sizeof buf)) > 0) err.append(buf, static_cast<size_t>(n));
        ::close(err_pipe[0]);
        if (succeed) {
            CHECK(code == 0);
            CHECK(err.empty());
        } else {
            CHECK(code == 1);
            CHECK_THAT(err, Catch::Contains("error: port 25 in use"));
        }
        auto content = sys::read_file(marker);
        REQUIRE(content.ok());
        CHECK(*content == "ok");
    }
}

TEST_CASE("sys: lookup_user finds root and nobody, refuses unknown users", "[sys]") {
    auto root = sys::lookup_user("root");
    REQUIRE(root.ok());
    CHECK(root->uid == 0);
    CHECK(root->gid == 0);
    CHECK(root->name == "root");
    auto nobody = sys::lookup_user("nobody");
    REQUIRE(nobody.ok());
    CHECK(nobody->uid != 0);
    auto unknown = sys::lookup_user("tern-no-such-user-x");
    REQUIRE_FALSE(unknown.ok());
    CHECK_THAT(unknown.message(), Catch::Contains("tern-no-such-user-x"));
    CHECK_FALSE(sys::lookup_user("").ok());
}

TEST_CASE("sys: drop_privileges is a no-op when not root", "[sys]") {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // As root, first become nobody for real; then a drop must do nothing.
        if (geteuid() == 0) {
            auto nobody = sys::lookup_user("nobody");
            if (!nobody.ok() || !sys::drop_to(*nobody).ok()) _exit(10);
        }
        uid_t before = getuid();
        if (!sys::drop_privileges("root").ok()) _exit(11);
        if (!sys::drop_privileges("tern-no-such-user-x").ok()) _exit(12);  // nothing looked up
        _exit(getuid() == before ? 0 : 13);
    }
    CHECK(wait_exit(pid) == 0);
}

TEST_CASE("sys: a child dropped to nobody cannot regain root", "[sys]") {
    if (geteuid() != 0) {
        WARN("not running as root: privilege drop not exercised");
        return;
    }
    TempDir dir;
    auto nobody = sys::lookup_user("nobody");
    REQUIRE(nobody.ok());
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        auto dropped = sys::drop_privileges("nobody", dir.path);
        if (!dropped.ok()) _exit(10);
        if (getuid() != nobody->uid || geteuid() != nobody->uid) _exit(11);
        if (getgid() != nobody->gid || getegid() != nobody->gid) _exit(12);
        if (setuid(0) == 0 || seteuid(0) == 0) _exit(13);
        gid_t groups[64];
        int n = getgroups(64, groups);
        for (int i = 0; i < n; ++i)
            if (groups[i] == 0) _exit(14);  // root's group must be gone
        // chroot took effect: the temp dir is now "/", so its own path is gone.
        if (::access(dir.path.c_str(), F_OK) == 0) _exit(15);
        _exit(0);
    }
    CHECK(wait_exit(pid) == 0);
}

// The jobs of one run() must really run at the same time: three jobs that
// each wait for all three to have started finish only with two threads
// and the caller working together.  Results come back in job order.
TEST_CASE("sys: SyncPool runs jobs in parallel and returns their statuses in order", "[sys]") {
    sys::SyncPool pool(2);
    std::mutex m;
    std::condition_variable cv;
    int started = 0;
    auto meet = [&](bool fail) {
        return [&, fail]() -> Status {
            std::unique_lock lock(m);
            ++started;
            cv.notify_all();
            if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return started >= 3; }))
                return make_error("the jobs did not run in parallel");
            if (fail) return make_error("job failed");
            return {};
        };
    };
    auto results = pool.run({meet(false), meet(true), meet(false)});
    REQUIRE(results.size() == 3);
    CHECK(results[0].ok());
    CHECK(results[1].message() == "job failed");
    CHECK(results[2].ok());
    // A second run, and an empty one, on the same pool.
    started = 0;
    CHECK(pool.run({}).empty());
    results = pool.run({meet(false), meet(false), meet(false)});
    CHECK(std::all_of(results.begin(), results.end(), [](const Status& s) { return s.ok(); }));
}
