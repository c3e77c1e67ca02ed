// LockFile; see lock_file.hpp.  flock() locks belong to the open file
// description, so a forked child shares the lock until it closes its copy;
// children call forget() or exec (the fd is close-on-exec).
#include "lib/sys/lock_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "lib/core/errno_text.hpp"
#include "lib/sys/files.hpp"

namespace tern::sys {

namespace {

pid_t read_pid(int fd) {
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    pid_t pid = 0;
    std::from_chars(buf, buf + n, pid);
    return pid;
}

}  // namespace

Result<LockFile> LockFile::try_lock(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644));
    if (!fd) return errno_error("open " + path);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            pid_t pid = read_pid(fd.get());
            return make_error(path + ": already locked by pid " + std::to_string(pid));
        }
        return errno_error("flock " + path);
    }
    LockFile lock;
    lock.path_ = path;
    lock.fd_ = std::move(fd);
    if (Status s = lock.update_pid(); !s) return s.error();
    return lock;
}

pid_t LockFile::holder(const std::string& path) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) return 0;
    if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return 0;  // nobody holds it
    return read_pid(fd.get());
}

Status LockFile::update_pid() {
    if (!fd_) return make_error("lock file not held");
    std::string text = std::to_string(getpid()) + "\n";
    if (::ftruncate(fd_.get(), 0) != 0) return errno_error("truncate " + path_);
    if (::pwrite(fd_.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
        return errno_error("write " + path_);
    return {};
}

void LockFile::forget() {
    fd_.reset();
    path_.clear();
}

LockFile::~LockFile() {
    if (fd_.valid() && !path_.empty()) ::unlink(path_.c_str());
}

}  // namespace tern::sys
