// Writing a message into a mailbox: Maildir (home ~/Maildir/ or a virtual
// mailbox), an mbox in the spool directory, or a /file alias target.
//
// Each writer streams the queued body (copy_message) and reports success
// only after the data is on disk (Maildir: through the mail store,
// lib/mailstore, whose index assigns the UID at delivery: tmp → fsync →
// new/ under the index lock → fsync dir and index, for a whole batch of
// deliveries at once (group_commit.hpp); mbox: fsync, or truncate back on
// failure).  Errors map to DSN codes as
// Postfix's local does: quota or size limit → 5.2.2 (bounce), no space or
// a busy lock → 4.x (retry), a mailbox that is not a safe regular file →
// 4.2.0 (retry after the admin fixed it).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "local-delivery/group_commit.hpp"
#include "local-delivery/identity.hpp"
#include "local-delivery/message.hpp"
#include "local-delivery/result.hpp"
#include "local-delivery/store_cache.hpp"
#include "lib/maildir/maildir.hpp"
#include "lib/mbox/mbox.hpp"

namespace tern::local {

struct MessageRef {
    const QueuedMessage* body = nullptr;
    std::string sender;
    std::string prefix;  // Return-Path: / Delivered-To: lines
    // Set for deliveries from the queue: Maildir delivery is then idempotent
    // (maildir.hpp, docs/queue.md).  mbox and commands are at-least-once.
    const maildir::DeliveryKey* key = nullptr;
};

struct MaildirTarget {
    std::string dir;           // the Maildir (cur/new/tmp inside)
    Identity owner;            // written as this user
    uint64_t quota = 0;        // Maildir++ quota in bytes, 0 = none
    uint64_t message_limit = 0;  // largest single message, 0 = none
    std::string folder = "INBOX";  // mail store folder name (created when missing)
};
// A Maildir delivery ends at once (an error, the earlier copy found, over
// quota) or is staged in the group commit: then its result is
// batch.result(ticket) after batch.commit().
struct MaildirOutcome {
    std::optional<DeliveryResult> result;
    size_t ticket = 0;
};
MaildirOutcome deliver_maildir(const MaildirTarget& target, const MessageRef& message, StoreCache& stores,
                               GroupCommit& batch);

struct MboxTarget {
    std::string path;
    Identity owner;
    bool spool = true;         // spool mailbox: dot-lock, owner check; false: a /file target
    uint64_t size_limit = 0;
    mbox::LockOptions lock;
};
DeliveryResult deliver_mbox(const MboxTarget& target, const MessageRef& message);

}  // namespace tern::local
