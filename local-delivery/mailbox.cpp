// Mailbox writers: see mailbox.hpp.
#include "local-delivery/mailbox.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>

#include "lib/maildir/maildir.hpp"
#include "lib/sys/files.hpp"
#include "local-delivery/message.hpp"

namespace tern::local {
namespace {

// Errors that a later attempt may not have: full disk, quota of the file
// system, I/O trouble.  Anything else in a mailbox write is also retried —
// a mailbox problem is the admin's to fix, not the sender's.
DeliveryResult write_failure(const std::string& what, int err) {
    if (err == ENOSPC || err == EDQUOT) return DeliveryResult::defer("4.3.0", what + ": mail system full");
    return DeliveryResult::defer("4.2.0", what);
}

}  // namespace

MaildirOutcome deliver_maildir(const MaildirTarget& target, const MessageRef& message, StoreCache& stores,
                               GroupCommit& batch) {
    auto done = [](DeliveryResult r) { return MaildirOutcome{std::move(r), 0}; };
    AsUser as(target.owner);
    if (!as.ok()) return done(DeliveryResult::defer("4.3.0", "cannot switch to user " + target.owner.name + ": " +
                                                                  as.status().message()));
    uint64_t expected = message.body->size + message.prefix.size();
    if (target.message_limit != 0 && expected > target.message_limit)
        return done(DeliveryResult::bounce("5.2.2", "message is larger than the mailbox size limit"));

    // Through the mail store, as the owner: the index (in the Maildir) is
    // theirs and learns the message's UID at commit.
    auto store = stores.get(target.owner.uid, target.dir, target.quota);
    if (!store) return done(write_failure("cannot open maildir " + target.dir + ": " + store.message(), errno));
    mailstore::DeliveryOptions delivery;
    delivery.folder = target.folder;
    if (message.key) {
        delivery.unique_name = maildir::delivery_name(*message.key);
        delivery.maybe_delivered = message.key->maybe_delivered;
        delivery.retry_match = maildir::delivery_prefix(*message.key).size();  // any host part
    }
    delivery.expected_size = expected;
    auto start = (*store)->begin_delivery(delivery);
    if (!start) return done(write_failure("cannot deliver to maildir " + target.dir + ": " + start.message(), errno));
    switch (start->outcome) {
        case mailstore::DeliveryStart::Outcome::AlreadyStored:
            return done(DeliveryResult::sent("already delivered to maildir"));
        case mailstore::DeliveryStart::Outcome::OverQuota:
            return done(DeliveryResult::bounce("5.2.2", "mailbox full (quota exceeded)"));
        case mailstore::DeliveryStart::Outcome::Write: break;
    }
    auto& writer = *start->writer;
    int saved_errno = 0;
    auto copied = copy_message(*message.body, message.prefix, [&](std::string_view piece) {
        auto s = writer.write(piece);
        if (!s) saved_errno = errno;
        return s;
    });
    // The writer is dropped (its tmp file removed) while we are still the owner.
    if (!copied)
        return done(write_failure("cannot write maildir file: " + copied.message(), saved_errno ? saved_errno : errno));
    if (auto s = writer.stage(mailstore::Flags{}); !s)
        return done(write_failure("cannot commit maildir file: " + s.message(), errno));
    return MaildirOutcome{std::nullopt, batch.add(target.owner, *store, std::move(start->writer), target.dir)};
}

DeliveryResult deliver_mbox(const MboxTarget& target, const MessageRef& message) {
    mbox::OpenOptions options;
    options.lock = target.lock;
    options.size_limit = target.size_limit;
    if (target.spool) {
        // The spool directory is root's (like /var/mail): the dot-lock and a
        // new mailbox are made with our privileges, the file is given to the
        // recipient and must stay theirs.
        options.owner = target.owner.uid;
        options.group = target.owner.gid;
        if (auto s = sys::mkdir_p(sys::dir_name(target.path), 01777); !s)
            return write_failure("cannot create mail spool directory: " + s.message(), errno);
    } else {
        options.lock.dotlock = false;  // a /file target's directory need not be writable
    }
    // Spool mailboxes: opened (safely) and locked with our privileges, then
    // written as the recipient.  /file targets: everything as the user the
    // resolver chose, so the kernel checks their permissions.
    std::optional<AsUser> as;
    if (!target.spool) as.emplace(target.owner);
    if (as && !as->ok()) return DeliveryResult::defer("4.3.0", "cannot switch to user " + target.owner.name);

    mbox::Failure failure = mbox::Failure::None;
    auto box = mbox::MboxAppender::open(target.path, options, &failure);
    if (!box) {
        switch (failure) {
            case mbox::Failure::LockBusy: return DeliveryResult::defer("4.2.0", "cannot lock mailbox " + target.path);
            case mbox::Failure::NoSpace: return DeliveryResult::defer("4.3.0", box.message() + ": mail system full");
            case mbox::Failure::TooBig: return DeliveryResult::bounce("5.2.2", "mailbox " + target.path + " is full");
            default:
                if (!target.spool && (errno == EACCES || errno == EPERM))
                    return DeliveryResult::bounce("5.2.0", "cannot append to " + target.path + ": " + std::strerror(errno));
                return DeliveryResult::defer("4.2.0", box.message());
        }
    }
    // Declared after box, so root is back before box unlocks the dot-lock
    // in the spool directory.
    std::optional<AsUser> spool_as;
    if (target.spool) spool_as.emplace(target.owner);
    if (spool_as && !spool_as->ok()) return DeliveryResult::defer("4.3.0", "cannot switch to user " + target.owner.name);

    auto fail = [&](const Status& s) {
        box->rollback();
        if (box->failure() == mbox::Failure::TooBig)
            return DeliveryResult::bounce("5.2.2", "mailbox " + target.path + " is full (mailbox_size_limit)");
        if (box->failure() == mbox::Failure::NoSpace)
            return DeliveryResult::defer("4.3.0", s.message() + ": mail system full");
        return DeliveryResult::defer("4.2.0", s.message());
    };
    if (auto s = box->begin(message.sender, std::time(nullptr)); !s) return fail(s);
    auto copied = copy_message(*message.body, message.prefix, [&](std::string_view piece) { return box->write(piece); });
    if (!copied) return fail(copied);
    if (auto s = box->commit(); !s) return fail(s);
    return DeliveryResult::sent(target.spool ? "delivered to mailbox" : "delivered to file: " + target.path);
}

}  // namespace tern::local
