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
//
// Idempotent queue delivery (docs/queue.md): a delivery from the queue
// names its file after the queue ID and recipient index instead of a
// random unique part, <arrival sec>.<queue id>_<rcpt index>.<host>
// (delivery_name), so the same delivery always gets the same name.  A
// retry whose link() into new/ finds that name (EEXIST) reports the earlier
// copy instead of a second one, at no cost to a first delivery.  A retry
// that may follow a lost result (DeliveryKey::maybe_delivered) also looks
// for the base name in new/ and cur/ first, since a mail reader may have
// moved the file to cur/<base>,S=..,W=..:2,<flags>; that lookup reads the
// two directories and is only done for such retries.
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

// The identity of one delivery from the queue.
struct DeliveryKey {
    int64_t arrival = 0;     // message arrival, unix seconds
    std::string queue_id;    // [0-9A-Z], no '.', '/', ':' or '_'
    uint32_t recipient = 0;  // the recipient's index in the queue
    bool maybe_delivered = false;  // an earlier attempt's result may have been lost
};

// "<arrival>.<queue id>_<recipient>.<host>": the base name of key's file.
std::string delivery_name(const DeliveryKey& key);
// "<arrival>.<queue id>_<recipient>.": the part that does not depend on the host.
std::string delivery_prefix(const DeliveryKey& key);

// The path of key's file in DIR/new/ or DIR/cur/ (any host part, any
// flags), or "" when there is none.  Reads both directories.
Result<std::string> find_delivered(const std::string& dir, const DeliveryKey& key);

// The path of the file named base in DIR/new/ or DIR/cur/: its name is
// base, or base followed by ',' (size fields) or ':' (flags), or with
// any_suffix anything longer that starts with base; "" when there is
// none.  Reads both directories.
Result<std::string> find_named(const std::string& dir, std::string_view base, bool any_suffix = false);

struct DeliveredFile {
    std::string path;        // DIR/new/<unique>,S=..,W=..
    uint64_t size = 0;       // S=
    uint64_t crlf_size = 0;  // W=
    bool earlier = false;    // an earlier attempt had delivered it; path is that file
};

class MaildirWriter {
public:
    // Opens a new tmp file in an existing Maildir (see ensure_maildir).
    // With a final_name (delivery_name), commit() links the message under
    // that base name and treats an existing one as this delivery done earlier.
    static Result<MaildirWriter> create(const std::string& dir, std::string final_name = "");

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
    std::string final_name_;
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
