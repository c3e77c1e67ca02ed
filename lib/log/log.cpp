// Logging: Postfix-format lines to syslog, a file, or stderr.
//
// Every message is one line: control characters (CR, LF, NUL, ESC, ...) are
// replaced by '?', so text that came from a client can never split a line or
// forge another one.  File and stderr targets write each whole line with one
// write() (file opened with O_APPEND), so lines of concurrent processes
// never interleave.  The file is reopened when it was rotated away.
#include "lib/log/log.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "lib/sys/process.hpp"

namespace tern::log {

namespace {

enum class Target { Syslog, File, Stderr };

constexpr size_t kMaxMessage = 16 * 1024;  // longer messages are cut, marked "..."

struct State {
    std::mutex mutex;  // guards the fields below (worker threads log too)
    Target target = Target::Stderr;
    std::string tag = "tern";
    std::string path;
    int fd = -1;
    time_t last_check = 0;
    std::string host;
};

State& state() {
    static State s;
    return s;
}

std::atomic<bool> g_debug{false};

std::string pid_text() { return std::to_string(sys::own_pid()); }

std::string short_hostname() {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
    std::string h(buf);
    if (auto dot = h.find('.'); dot != std::string::npos) h.resize(dot);
    return h.empty() ? "localhost" : h;
}

int open_log_file(const std::string& path) {
    return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

// After logrotate moved the file away, start a new one (checked once a second).
void reopen_if_rotated(State& s) {
    time_t now = time(nullptr);
    if (now == s.last_check && s.fd >= 0) return;
    s.last_check = now;
    struct stat by_path, by_fd;
    bool same = s.fd >= 0 && ::stat(s.path.c_str(), &by_path) == 0 && ::fstat(s.fd, &by_fd) == 0 &&
                by_path.st_dev == by_fd.st_dev && by_path.st_ino == by_fd.st_ino;
    if (same) return;
    int fd = open_log_file(s.path);
    if (fd < 0) return;  // keep writing to the old file rather than losing lines
    if (s.fd >= 0) ::close(s.fd);
    s.fd = fd;
}

const char* prefix(Level level) {
    switch (level) {
    case Level::Warning: return "warning: ";
    case Level::Error: return "error: ";
    case Level::Fatal: return "fatal: ";
    default: return "";
    }
}

int syslog_priority(Level level) {
    switch (level) {
    case Level::Debug: return LOG_DEBUG;
    case Level::Info: return LOG_INFO;
    case Level::Warning: return LOG_WARNING;
    case Level::Error: return LOG_ERR;
    case Level::Fatal: return LOG_CRIT;
    }
    return LOG_INFO;
}

void append_sanitized(std::string& out, std::string_view message) {
    size_t n = std::min(message.size(), kMaxMessage);
    for (size_t i = 0; i < n; ++i) {
        unsigned char c = static_cast<unsigned char>(message[i]);
        out.push_back(c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c));
    }
    if (message.size() > kMaxMessage) out.append("...");
}

void write_all_fd(int fd, const std::string& line) {
    size_t off = 0;
    while (off < line.size()) {
        ssize_t n = ::write(fd, line.data() + off, line.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // nowhere left to report a logging failure
        off += static_cast<size_t>(n);
    }
}

void vlog(Level level, const char* fmt, va_list ap) {
    char stack_buf[1024];
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(stack_buf, sizeof stack_buf, fmt, copy);
    va_end(copy);
    if (n < 0) {
        write(level, fmt);
        return;
    }
    if (static_cast<size_t>(n) < sizeof stack_buf) {
        write(level, std::string_view(stack_buf, static_cast<size_t>(n)));
        return;
    }
    std::string big(static_cast<size_t>(n) + 1, '\0');
    std::vsnprintf(big.data(), big.size(), fmt, ap);
    big.resize(static_cast<size_t>(n));
    write(level, big);
}

}  // namespace

void init(std::string_view program, std::string_view target) {
    State& s = state();
    std::lock_guard lock(s.mutex);
    s.tag = "tern/" + std::string(program.empty() ? "tern" : program);
    if (s.fd >= 0) {
        ::close(s.fd);
        s.fd = -1;
    }
    if (target.empty() || target == "syslog") {
        s.target = Target::Syslog;
        // openlog keeps the pointer: s.tag lives as long as the process.
        openlog(s.tag.c_str(), LOG_PID | LOG_NDELAY, LOG_MAIL);
        return;
    }
    if (target == "stderr") {
        s.target = Target::Stderr;
        s.host = short_hostname();
        return;
    }
    s.target = Target::File;
    s.path = std::string(target);
    s.host = short_hostname();
    s.fd = open_log_file(s.path);
    s.last_check = time(nullptr);
    if (s.fd < 0) {
        int err = errno;
        s.target = Target::Stderr;
        std::string line = s.tag + "[" + pid_text() + "]: error: cannot open log file " +
                           s.path + ": " + std::strerror(err) + "; logging to stderr\n";
        write_all_fd(2, line);
    }
}

void set_debug(bool on) { g_debug = on; }

void write(Level level, std::string_view message) {
    if (level == Level::Debug && !g_debug) return;
    State& s = state();
    std::lock_guard lock(s.mutex);
    std::string text = prefix(level);
    append_sanitized(text, message);
    if (s.target == Target::Syslog) {
        ::syslog(syslog_priority(level), "%s", text.c_str());
        return;
    }
    // "Mon DD HH:MM:SS host tern/prog[pid]: text", like a syslog file.
    char stamp[32];
    time_t now = time(nullptr);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
    if (s.host.empty()) s.host = short_hostname();
    std::string line;
    line.reserve(text.size() + 64);
    line.append(stamp).append(" ").append(s.host).append(" ").append(s.tag);
    line.append("[").append(pid_text()).append("]: ").append(text).append("\n");
    if (s.target == Target::File) {
        reopen_if_rotated(s);
        write_all_fd(s.fd >= 0 ? s.fd : 2, line);
    } else {
        write_all_fd(2, line);
    }
}

#define TERN_LOG_BODY(level)      \
    va_list ap;                   \
    va_start(ap, fmt);            \
    vlog(level, fmt, ap);         \
    va_end(ap)

void debug(const char* fmt, ...) {
    if (!g_debug) return;
    TERN_LOG_BODY(Level::Debug);
}
void info(const char* fmt, ...) { TERN_LOG_BODY(Level::Info); }
void warning(const char* fmt, ...) { TERN_LOG_BODY(Level::Warning); }
void error(const char* fmt, ...) { TERN_LOG_BODY(Level::Error); }
void fatal(const char* fmt, ...) {
    TERN_LOG_BODY(Level::Fatal);
    // _Exit, not exit: a fatal error may strike with objects in any state, so
    // no static destructors run (the log line itself is already written).
    std::fflush(nullptr);
    std::_Exit(1);
}

#undef TERN_LOG_BODY

}  // namespace tern::log
