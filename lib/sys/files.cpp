// File helpers; see files.hpp.  The atomic write follows the usual
// crash-safe pattern: data reaches the disk before the rename makes it
// visible, and the directory is synced so the rename itself survives.
#include "lib/sys/files.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "lib/core/errno_text.hpp"
#include "lib/core/fd.hpp"

namespace tern::sys {

namespace {

// write() or, with an offset, pwrite() until everything is written.
Status write_whole(int fd, std::string_view data, std::optional<off_t> offset) {
    size_t off = 0;
    while (off < data.size()) {
        const char* at = data.data() + off;
        size_t left = data.size() - off;
        ssize_t n = offset ? ::pwrite(fd, at, left, *offset + off_t(off)) : ::write(fd, at, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("write");
        }
        if (n == 0) return make_error("write: no progress");
        off += static_cast<size_t>(n);
    }
    return {};
}

}  // namespace

Status write_all(int fd, std::string_view data) { return write_whole(fd, data, std::nullopt); }

Status pwrite_all(int fd, std::string_view data, off_t offset) { return write_whole(fd, data, offset); }

bool pread_exactly(int fd, char* buf, size_t n, off_t offset) {
    for (size_t done = 0; done < n;) {
        ssize_t r = ::pread(fd, buf + done, n - done, offset + static_cast<off_t>(done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        done += static_cast<size_t>(r);
    }
    return true;
}

Result<Fd> memory_file(const char* name, std::string_view data) {
    Fd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) return errno_error("memfd_create");
    if (auto st = write_all(fd.get(), data); !st) return st.error();
    if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0)
        return errno_error("memfd seals");
    if (::lseek(fd.get(), 0, SEEK_SET) != 0) return errno_error("lseek");
    return fd;
}

Result<std::string> read_file(const std::string& path, size_t max_size) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) return errno_error("open " + path);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return errno_error("stat " + path);
    if (S_ISDIR(st.st_mode)) return make_error("read " + path + ": is a directory");
    std::string out;
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
        if (static_cast<uint64_t>(st.st_size) > max_size) return make_error("read " + path + ": file too large");
        out.reserve(static_cast<size_t>(st.st_size));
    }
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("read " + path);
        }
        if (n == 0) break;
        if (out.size() + static_cast<size_t>(n) > max_size) return make_error("read " + path + ": file too large");
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

std::string dir_name(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

Status fsync_dir(const std::string& dir) {
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return errno_error("open directory " + dir);
    if (::fsync(fd.get()) != 0) return errno_error("fsync directory " + dir);
    return {};
}

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
    std::string tmp = path + ".tmp." + std::to_string(getpid());
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, mode));
    if (!fd) return errno_error("create " + tmp);
    auto cleanup_fail = [&](Error e) -> Status {
        ::unlink(tmp.c_str());
        return e;
    };
    if (::fchmod(fd.get(), mode) != 0) return cleanup_fail(errno_error("chmod " + tmp));
    if (Status w = write_all(fd.get(), data); !w) return cleanup_fail(make_error(tmp + ": " + w.message()));
    if (::fsync(fd.get()) != 0) return cleanup_fail(errno_error("fsync " + tmp));
    if (::close(fd.release()) != 0) return cleanup_fail(errno_error("close " + tmp));
    if (::rename(tmp.c_str(), path.c_str()) != 0) return cleanup_fail(errno_error("rename " + tmp + " to " + path));
    return fsync_dir(dir_name(path));
}

Status mkdir_p(const std::string& path, mode_t mode) {
    if (path.empty()) return make_error("mkdir: empty path");
    // Usually there already (an index's directory at each open): one stat,
    // not a mkdir and a stat per component.
    struct stat existing;
    if (::stat(path.c_str(), &existing) == 0 && S_ISDIR(existing.st_mode)) return {};
    std::string partial;
    size_t pos = 0;
    while (pos <= path.size()) {
        size_t slash = path.find('/', pos);
        if (slash == std::string::npos) slash = path.size();
        partial = path.substr(0, slash);
        pos = slash + 1;
        if (partial.empty() || partial == "." || partial == "..") continue;
        if (::mkdir(partial.c_str(), mode) != 0) {
            if (errno != EEXIST) return errno_error("mkdir " + partial);
            struct stat st;
            if (::stat(partial.c_str(), &st) != 0) return errno_error("stat " + partial);
            if (!S_ISDIR(st.st_mode)) return make_error("mkdir " + partial + ": exists and is not a directory");
        }
    }
    return {};
}

Status set_nonblocking(int fd, bool on) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) return errno_error("fcntl F_GETFL");
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (::fcntl(fd, F_SETFL, flags) != 0) return errno_error("fcntl F_SETFL");
    return {};
}

Status set_cloexec(int fd, bool on) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0) return errno_error("fcntl F_GETFD");
    flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
    if (::fcntl(fd, F_SETFD, flags) != 0) return errno_error("fcntl F_SETFD");
    return {};
}

}  // namespace tern::sys
