// mbox delivery: append one message to a Unix mailbox file (/var/mail/USER
// or a /file alias target), locked, quoted, and all-or-nothing.
//
//   From sender@example.org Tue Nov 24 02:17:41 2026     separator line
//   Return-Path: <sender@example.org>
//   ...headers and body, lines matching ^>*From  get one more '>' (mboxrd)
//                                                         blank line at the end
//
// Locking: a dot-lock file PATH.lock created with O_EXCL (a lock older than
// stale_lock_time is removed as left behind by a crash), then an fcntl()
// write lock on the mailbox itself, so both old-style (dot-lock) and
// kernel-lock mail readers are kept out.  Both are retried a few times, then
// the delivery fails with LockBusy (to be retried later: a temporary error).
// The file is opened without following symlinks and must be a regular file
// with one link; a new file is created 0600 and given to its owner.
// On any write or fsync error the file is truncated back to its size before
// the delivery, so a mailbox never holds half a message.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

namespace tern::mbox {

// mboxrd "From " quoting of a stream that arrives in arbitrary pieces.
class FromQuoter {
public:
    void feed(std::string_view in, std::string& out);
    void finish(std::string& out);  // flushes a buffered partial line start

private:
    bool line_start_ = true;
    std::string pending_;  // a line start that may still become ">*From "
};

// "From <sender or MAILER-DAEMON> <asctime date>\n"
std::string separator_line(std::string_view sender, std::time_t when);

struct LockOptions {
    bool dotlock = true;
    int attempts = 10;
    std::chrono::milliseconds delay{1000};
    std::chrono::seconds stale_after{500};
};

enum class Failure { None, LockBusy, NoSpace, TooBig, BadFile, Other };

struct OpenOptions {
    LockOptions lock;
    std::optional<uid_t> owner;  // a new file is chowned to it (as root); an existing one must have it
    std::optional<gid_t> group;
    uint64_t size_limit = 0;     // largest mailbox after the append (0 = none) → TooBig
};

class MboxAppender {
public:
    // Opens or creates path and takes the locks.  On failure, failure_of()
    // tells a busy lock or full disk (temporary) from a bad file.
    static Result<MboxAppender> open(const std::string& path, const OpenOptions& options,
                                     Failure* failure = nullptr);

    MboxAppender(MboxAppender&&) noexcept;
    MboxAppender& operator=(MboxAppender&&) = delete;
    ~MboxAppender();  // rolls back an uncommitted message, releases the locks

    Status begin(std::string_view sender, std::time_t when);  // the separator line
    Status write(std::string_view data);                      // message bytes, quoted
    Status commit();                                          // final newline(s), fsync
    void rollback();                                          // truncate to the original size
    Failure failure() const { return failure_; }
    uint64_t original_size() const { return original_size_; }

private:
    MboxAppender() = default;
    Status append_raw(std::string_view data);
    void release();

    std::string path_;
    std::string lock_path_;  // empty when no dot-lock is held
    Fd fd_;
    uint64_t original_size_ = 0;
    uint64_t written_ = 0;
    uint64_t size_limit_ = 0;
    FromQuoter quoter_;
    char last_ = '\n';
    bool committed_ = false;
    bool dirty_ = false;
    Failure failure_ = Failure::None;
};

}  // namespace tern::mbox
