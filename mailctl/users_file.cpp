// Editing the users and domains files: see users_file.hpp.
#include "mailctl/users_file.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "lib/core/errno_text.hpp"
#include "lib/core/fd.hpp"
#include "lib/sys/files.hpp"

namespace tern::mailctl {
namespace {

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return std::string(s);
}

// One line from fd without echo when it is a terminal.
Result<std::string> read_line(int fd, bool no_echo) {
    termios old{};
    bool restore = false;
    if (no_echo && ::tcgetattr(fd, &old) == 0) {
        termios quiet = old;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        restore = ::tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
    }
    std::string line;
    char c;
    bool got_eof = true;
    for (;;) {
        ssize_t n = ::read(fd, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (c == '\n') {
            got_eof = false;
            break;
        }
        line.push_back(c);
        if (line.size() > 4096) break;
    }
    if (restore) {
        ::tcsetattr(fd, TCSAFLUSH, &old);
        std::cerr << "\n";
    }
    if (got_eof && line.empty()) return make_error("no password given (end of input)");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

}  // namespace

Result<TextFile> TextFile::read(const std::string& path) {
    TextFile f;
    f.path = path;
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return f;
        return errno_error(path);
    }
    auto text = sys::read_file(path);
    if (!text) return text.error();
    f.existed = true;
    size_t pos = 0;
    while (pos < text->size()) {
        size_t end = text->find('\n', pos);
        if (end == std::string::npos) end = text->size();
        f.lines.push_back(text->substr(pos, end - pos));
        pos = end + 1;
    }
    return f;
}

Status TextFile::write(mode_t new_mode, const char* new_group) const {
    struct stat st{};
    bool have = ::stat(path.c_str(), &st) == 0;
    std::string data;
    for (const auto& l : lines) data += l + "\n";
    mode_t mode = have ? (st.st_mode & 07777) : new_mode;
    auto w = sys::write_file_atomic(path, data, mode);
    if (!w) return w;
    if (!have && new_group != nullptr && ::geteuid() == 0) {
        if (const group* g = ::getgrnam(new_group)) {
            if (::chown(path.c_str(), 0, g->gr_gid) != 0) return errno_error("chown " + path);
            ::chmod(path.c_str(), mode);
        }
    }
    if (have && (st.st_uid != ::geteuid() || st.st_gid != ::getegid())) {
        if (::chown(path.c_str(), st.st_uid, st.st_gid) != 0) return errno_error("chown " + path);
        ::chmod(path.c_str(), mode);  // chown clears nothing we need, but be exact
    }
    return {};
}

std::string user_of_line(std::string_view line) {
    std::string t = trim(line);
    if (t.empty() || t.front() == '#') return "";
    auto colon = t.find(':');
    std::string a = trim(std::string_view(t).substr(0, colon));
    for (auto& c : a) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return a;
}

std::optional<size_t> find_user_line(const TextFile& file, std::string_view address) {
    std::string want(address);
    for (auto& c : want) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (size_t i = 0; i < file.lines.size(); ++i)
        if (user_of_line(file.lines[i]) == want) return i;
    return std::nullopt;
}

Result<std::string> read_new_password(bool from_stdin, bool confirm) {
    if (from_stdin) {
        auto pw = read_line(0, false);
        if (!pw) return pw;
        if (pw->empty()) return make_error("empty password");
        return pw;
    }
    Fd tty(::open("/dev/tty", O_RDWR | O_CLOEXEC));
    if (!tty) return make_error("no terminal to ask for the password: use --password-stdin");
    auto prompt = [&](const char* text) { (void)!::write(tty.get(), text, std::strlen(text)); };
    prompt("Password: ");
    auto pw = read_line(tty.get(), true);
    if (!pw) return pw;
    if (pw->empty()) return make_error("empty password");
    if (confirm) {
        prompt("Again: ");
        auto again = read_line(tty.get(), true);
        if (!again) return again;
        if (*again != *pw) return make_error("the passwords differ");
    }
    return pw;
}

}  // namespace tern::mailctl
