// Maildir delivery: MaildirWriter writes one message durably into a Maildir.
//
// The protocol (cr.yp.to/proto/maildir.html, with Dovecot's name fields):
// the message is written into tmp/ under a unique name
// (<sec>.M<usec>P<pid>Q<seq>.<host>), fsync'd, then linked into new/ as
// <unique>,S=<size>,W=<crlf size> (S = bytes on disk with LF line ends,
// W = the size with CRLF line ends, what IMAP RFC822.SIZE reports), the tmp
// name unlinked and new/ fsync'd.  Only after that does commit() report
// success, so a delivery that was acknowledged survives a crash; a writer
// dropped before commit() removes its tmp file.  link() rather than rename()
// means an existing name in new/ is never overwritten.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

namespace tern::maildir {

// Creates DIR and DIR/{cur,new,tmp} (mode 0700) where missing.
Status ensure_maildir(const std::string& dir);

// A name for a new message file: "<sec>.M<usec>P<pid>Q<seq>.<host>", host
// with '/' and ':' replaced as Maildir requires.
std::string unique_name();

struct DeliveredFile {
    std::string path;        // DIR/new/<unique>,S=..,W=..
    uint64_t size = 0;       // S=
    uint64_t crlf_size = 0;  // W=
};

class MaildirWriter {
public:
    // Opens a new tmp file in an existing Maildir (see ensure_maildir).
    static Result<MaildirWriter> create(const std::string& dir);

    MaildirWriter(MaildirWriter&&) noexcept;
    MaildirWriter& operator=(MaildirWriter&&) noexcept;
    ~MaildirWriter();  // unlinks the tmp file unless committed

    // Appends message bytes (LF line ends).
    Status write(std::string_view data);
    uint64_t size() const { return size_; }
    uint64_t crlf_size() const { return size_ + lines_; }

    // fsync, link into new/, unlink tmp, fsync new/.  After an error the
    // message is not delivered and the tmp file is removed.
    Result<DeliveredFile> commit();
    // Drops the message (same as destruction).
    void abort();

private:
    MaildirWriter() = default;
    std::string dir_;
    std::string name_;
    Fd fd_;
    uint64_t size_ = 0;
    uint64_t lines_ = 0;  // LF count: each becomes CRLF
};

// The Maildir of a virtual user: HOME/Maildir when the users table gives a
// home, else MAIL_DIRECTORY/<domain>/<user>/ (the Maildir itself,
// as Dovecot's mail_location = maildir:/var/vmail/%d/%n).  Fails for an address
// whose parts cannot be a path component (empty, ".", "..", '/', control).
// imapd and pop3d use the same function to find the mailbox.
Result<std::string> virtual_maildir(const std::string& mail_directory, std::string_view address,
                                    const std::string& home = "");

}  // namespace tern::maildir
