// mbox appending with dot-lock + fcntl lock and rollback: see mbox.hpp.
#include "lib/mbox/mbox.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "lib/core/errno_text.hpp"
#include "lib/sys/files.hpp"

namespace tern::mbox {
namespace {

constexpr std::string_view kFrom = "From ";

Failure failure_for(int err) {
    if (err == ENOSPC || err == EDQUOT) return Failure::NoSpace;
    if (err == EFBIG) return Failure::TooBig;
    return Failure::Other;
}

// Creates the dot-lock, removing a stale one.  Returns LockBusy after the
// attempts are used up.
Status take_dotlock(const std::string& lock_path, const LockOptions& opt, Failure& failure) {
    for (int attempt = 0; attempt < std::max(1, opt.attempts); ++attempt) {
        int fd = ::open(lock_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            std::string pid = std::to_string(::getpid()) + "\n";
            (void)sys::write_all(fd, pid);
            ::close(fd);
            return {};
        }
        if (errno != EEXIST) {
            failure = failure_for(errno);
            return errno_error("create lock " + lock_path);
        }
        struct stat st {};
        if (::lstat(lock_path.c_str(), &st) == 0 && std::time(nullptr) - st.st_mtime > opt.stale_after.count()) {
            ::unlink(lock_path.c_str());  // left behind by a crashed writer
            continue;
        }
        if (attempt + 1 < opt.attempts) std::this_thread::sleep_for(opt.delay);
    }
    failure = Failure::LockBusy;
    return make_error("mailbox lock " + lock_path + " is busy");
}

Status take_fcntl_lock(int fd, const std::string& path, const LockOptions& opt, Failure& failure) {
    for (int attempt = 0; attempt < std::max(1, opt.attempts); ++attempt) {
        struct flock fl {};
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (::fcntl(fd, F_SETLK, &fl) == 0) return {};
        if (errno != EAGAIN && errno != EACCES) {
            failure = Failure::Other;
            return errno_error("lock " + path);
        }
        if (attempt + 1 < opt.attempts) std::this_thread::sleep_for(opt.delay);
    }
    failure = Failure::LockBusy;
    return make_error("mailbox " + path + " is locked by another process");
}

}  // namespace

void FromQuoter::feed(std::string_view in, std::string& out) {
    size_t i = 0;
    while (i < in.size()) {
        if (!line_start_ && pending_.empty()) {
            // Copy through the end of this line in one go.
            const void* nl = std::memchr(in.data() + i, '\n', in.size() - i);
            size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - in.data()) + 1 : in.size();
            out.append(in.substr(i, end - i));
            i = end;
            line_start_ = nl != nullptr;
            continue;
        }
        char c = in[i++];
        line_start_ = false;
        pending_ += c;
        size_t k = pending_.find_first_not_of('>');
        std::string_view rest = k == std::string::npos ? std::string_view{} : std::string_view(pending_).substr(k);
        if (rest == kFrom) {
            out += '>';  // RFC 4155 mboxrd: >*From  gains one '>'
            out += pending_;
            pending_.clear();
        } else if (rest.size() < kFrom.size() && kFrom.substr(0, rest.size()) == rest) {
            continue;  // could still become ">*From "
        } else {
            out += pending_;
            pending_.clear();
            line_start_ = c == '\n';
        }
    }
}

void FromQuoter::finish(std::string& out) {
    out += pending_;
    pending_.clear();
    line_start_ = true;
}

std::string separator_line(std::string_view sender, std::time_t when) {
    struct tm tm {};
    ::localtime_r(&when, &tm);
    char date[64];
    std::strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
    std::string who = sender.empty() ? "MAILER-DAEMON" : std::string(sender);
    for (char& c : who)  // the separator is one line of non-space tokens
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') c = '_';
    return "From " + who + " " + date + "\n";
}

MboxAppender::MboxAppender(MboxAppender&& o) noexcept
    : path_(std::move(o.path_)), lock_path_(std::move(o.lock_path_)), fd_(std::move(o.fd_)),
      original_size_(o.original_size_), written_(o.written_), size_limit_(o.size_limit_),
      quoter_(std::move(o.quoter_)), last_(o.last_), committed_(o.committed_), dirty_(o.dirty_),
      failure_(o.failure_) {
    o.lock_path_.clear();
    o.dirty_ = false;
}

MboxAppender::~MboxAppender() {
    if (!committed_) rollback();
    release();
}

Result<MboxAppender> MboxAppender::open(const std::string& path, const OpenOptions& options, Failure* failure) {
    Failure dummy = Failure::None;
    Failure& fail = failure ? *failure : dummy;
    fail = Failure::None;
    MboxAppender a;
    a.path_ = path;
    a.size_limit_ = options.size_limit;
    if (options.lock.dotlock) {
        std::string lock_path = path + ".lock";
        if (auto s = take_dotlock(lock_path, options.lock, fail); !s) return s.error();
        a.lock_path_ = lock_path;  // from here the destructor removes it
    }
    int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT) {
        fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 && ::geteuid() == 0 && options.owner &&
            ::fchown(fd, *options.owner, options.group.value_or(static_cast<gid_t>(-1))) != 0) {
            auto err = errno_error("chown " + path);
            ::close(fd);
            ::unlink(path.c_str());
            fail = Failure::Other;
            return err;
        }
    }
    if (fd < 0) {
        fail = errno == ELOOP ? Failure::BadFile : failure_for(errno);
        return errno_error("open mailbox " + path);
    }
    a.fd_.reset(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        fail = Failure::Other;
        return errno_error("fstat " + path);
    }
    // Refuse what an attacker could have put in place of a mailbox.
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || (options.owner && st.st_uid != *options.owner)) {
        fail = Failure::BadFile;
        return make_error("mailbox " + path + " is not a regular file with one link owned by the recipient");
    }
    int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    if (auto s = take_fcntl_lock(fd, path, options.lock, fail); !s) return s.error();
    if (::fstat(fd, &st) != 0) {
        fail = Failure::Other;
        return errno_error("fstat " + path);
    }
    a.original_size_ = static_cast<uint64_t>(st.st_size);
    return a;
}

Status MboxAppender::append_raw(std::string_view data) {
    if (data.empty()) return {};
    if (size_limit_ != 0 && original_size_ + written_ + data.size() > size_limit_) {
        failure_ = Failure::TooBig;
        return make_error("mailbox " + path_ + " would exceed its size limit of " + std::to_string(size_limit_));
    }
    dirty_ = true;
    if (auto s = sys::write_all(fd_.get(), data); !s) {
        failure_ = failure_for(errno);
        return make_error("write " + path_ + ": " + s.message());
    }
    written_ += data.size();
    last_ = data.back();
    return {};
}

Status MboxAppender::begin(std::string_view sender, std::time_t when) {
    // A mailbox whose last message lacks the blank line would glue ours to it.
    if (original_size_ > 0) {
        char tail[2] = {0, 0};
        bool one = original_size_ == 1;
        ssize_t n = ::pread(fd_.get(), tail + (one ? 1 : 0), one ? 1 : 2,
                            static_cast<off_t>(one ? 0 : original_size_ - 2));
        if (n <= 0 || tail[1] != '\n') {
            if (auto s = append_raw("\n\n"); !s) return s;
        } else if (!one && tail[0] != '\n') {
            if (auto s = append_raw("\n"); !s) return s;
        }
    }
    return append_raw(separator_line(sender, when));
}

Status MboxAppender::write(std::string_view data) {
    std::string out;
    out.reserve(data.size() + 16);
    quoter_.feed(data, out);
    return append_raw(out);
}

Status MboxAppender::commit() {
    std::string out;
    quoter_.finish(out);
    if (out.empty() ? last_ != '\n' : out.back() != '\n') out += '\n';
    out += '\n';  // the blank line that ends a message in an mbox
    if (auto s = append_raw(out); !s) return s;
    if (::fsync(fd_.get()) != 0) {
        failure_ = failure_for(errno);
        return errno_error("fsync " + path_);
    }
    committed_ = true;
    return {};
}

void MboxAppender::rollback() {
    if (dirty_ && fd_) {
        // Never leave half a message behind.
        if (::ftruncate(fd_.get(), static_cast<off_t>(original_size_)) == 0) ::fsync(fd_.get());
        dirty_ = false;
        written_ = 0;
    }
}

void MboxAppender::release() {
    fd_.reset();  // closing drops the fcntl lock
    if (!lock_path_.empty()) {
        ::unlink(lock_path_.c_str());
        lock_path_.clear();
    }
}

}  // namespace tern::mbox
