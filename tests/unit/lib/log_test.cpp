// Tests for lib/log: the file target's line format, injection-proof
// messages, debug gating, concurrent writers, fatal's exit status, and
// log-safe names.
#include <catch2/catch.hpp>

#include <cstdio>
#include <iostream>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "lib/log/log.hpp"
#include "lib/log/loggable.hpp"

using namespace tern;

namespace {

struct TempLog {
    std::string path;
    TempLog() {
        char tmpl[] = "/tmp/tern-log-test-XXXXXX";
        int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        ::close(fd);
        path = tmpl;
    }
    ~TempLog() {
        ::unlink(path.c_str());
        log::init("unit-tests", "stderr");
    }
    std::vector<std::string> lines() const {
        std::ifstream in(path);
        std::vector<std::string> out;
        for (std::string line; std::getline(in, line);) out.push_back(line);
        return out;
    }
};

std::regex line_re(const std::string& program, const std::string& text) {
    return std::regex(R"(^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [^ ]+ tern/)" + program +
                      R"(\[[0-9]+\]: )" + text + "$");
}

}  // namespace

TEST_CASE("log: file lines follow the syslog/Postfix format", "[log]") {
    TempLog tmp;
    log::init("smtpd", tmp.path);
    log::info("%s: client=%s", "4XQ1", "localhost[127.0.0.1]");
    log::warning("disk %d%% full", 93);
    log::error("cannot open %s", "/x");
    auto lines = tmp.lines();
    REQUIRE(lines.size() == 3);
    CHECK(std::regex_match(lines[0], line_re("smtpd", R"(4XQ1: client=localhost\[127\.0\.0\.1\])")));
    CHECK(std::regex_match(lines[1], line_re("smtpd", "warning: disk 93% full")));
    CHECK(std::regex_match(lines[2], line_re("smtpd", "error: cannot open /x")));
    CHECK(lines[0].find("[" + std::to_string(getpid()) + "]: ") != std::string::npos);
}

TEST_CASE("log: control characters cannot split or forge lines", "[log]") {
    TempLog tmp;
    log::init("smtpd", tmp.path);
    log::info("reject: RCPT from x: %s", "evil\r\nJan  1 00:00:00 host tern/qmgr[1]: forged\x1b[31m");
    log::write(log::Level::Info, std::string_view("nul\0byte", 8));
    auto lines = tmp.lines();
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].find('\r') == std::string::npos);
    CHECK(lines[0].find('\x1b') == std::string::npos);
    CHECK(lines[0].find("evil??Jan  1") != std::string::npos);
    CHECK(lines[1].find("nul?byte") != std::string::npos);
    // UTF-8 is kept as is.
    log::info("caf\xc3\xa9");
    CHECK(tmp.lines().back().find("caf\xc3\xa9") != std::string::npos);
}

TEST_CASE("log: debug lines only when enabled; long messages are cut", "[log]") {
    TempLog tmp;
    log::init("qmgr", tmp.path);
    log::debug("hidden %d", 1);
    log::set_debug(true);
    log::debug("shown %d", 2);
    log::set_debug(false);
    log::info("%s", std::string(100000, 'a').c_str());
    auto lines = tmp.lines();
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].find("shown 2") != std::string::npos);
    CHECK(lines[1].size() < 17000);
    CHECK(lines[1].substr(lines[1].size() - 3) == "...");
}

TEST_CASE("log: concurrent processes never interleave lines", "[log]") {
    TempLog tmp;
    log::init("worker", tmp.path);
    constexpr int kProcs = 4, kLines = 200;
    std::vector<pid_t> pids;
    for (int p = 0; p < kProcs; ++p) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            std::string payload(300, static_cast<char>('a' + p));
            for (int i = 0; i < kLines; ++i) log::info("n=%d %s", i, payload.c_str());
            _exit(0);
        }
        pids.push_back(pid);
    }
    for (pid_t pid : pids) {
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
    }
    auto lines = tmp.lines();
    REQUIRE(lines.size() == kProcs * kLines);
    std::regex re = line_re("worker", "n=[0-9]+ (a{300}|b{300}|c{300}|d{300})");
    int bad = 0;
    for (const auto& l : lines)
        if (!std::regex_match(l, re)) ++bad;
    CHECK(bad == 0);
}

TEST_CASE("log: fatal logs then exits 1", "[log]") {
    TempLog tmp;
    log::init("master", tmp.path);
    // The child exits through exit(), which flushes stdio: flush first so the
    // test reporter's buffered output is not written twice.
    std::cout.flush();
    std::fflush(nullptr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) log::fatal("bad config: %s", "tern.conf:3");
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 1);
    auto lines = tmp.lines();
    REQUIRE(lines.size() == 1);
    CHECK(std::regex_match(lines[0], line_re("master", "fatal: bad config: tern\\.conf:3")));
}

TEST_CASE("log: an unwritable file falls back to stderr", "[log]") {
    log::init("smtpd", "/nonexistent-dir/tern.log");
    log::info("still works");  // must not crash; goes to stderr
    log::init("unit-tests", "stderr");
    SUCCEED();
}

TEST_CASE("log: loggable names lose control bytes, non-ASCII and brackets, and are bounded", "[log]") {
    CHECK(log::loggable("bob@example.org", 200) == "bob@example.org");
    CHECK(log::loggable("a\r\nb\x7f<c>\xc3\xa9", 200) == "a??b??c???");
    CHECK(log::loggable(std::string(300, 'x'), 200) == std::string(200, 'x'));
    CHECK(log::loggable("", 10).empty());
}
