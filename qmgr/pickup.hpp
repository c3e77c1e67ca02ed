// Pickup: moves messages that sendmail(1) left in the maildrop directory
// into the queue (Postfix's pickup + the local part of cleanup).
//
// For each complete maildrop file (lib/maildrop): a new queue body is
// written — tern's Received: header first, the message with LF line
// endings, and Message-ID:, Date: and From: added when the submitter left
// them out (RFC 5322 3.6 requires Date and From; Message-ID "SHOULD") —
// fsync'd, inserted into the Store with a synced commit, and only then is
// the maildrop file deleted.  A crash in between picks the file up again:
// a duplicate, never a loss.  A damaged file is moved to
// <queue_directory>/corrupt/ with a warning, never half-delivered.
//
// Send limits per local user: messages and recipients per uid (the maildrop
// file's owner) per sendmail_limit_window, counted in the lib/policy store
// that smtpd's limits use.  Over a limit, the uid is blocked for
// sendmail_block_time (one log line) and its files stay in the maildrop,
// untouched, until the block ends or `mailctl block clear UID` lifts it;
// the next scan then picks them up.  Uids in sendmail_limit_exempt_uids
// (root by default) are not counted.
#pragma once

#include <sys/types.h>

#include <memory>
#include <set>
#include <string>

#include "lib/config/config.hpp"
#include "lib/core/result.hpp"
#include "lib/policy/limits.hpp"
#include "lib/queue/queue.hpp"

namespace tern::qmgr {

class Pickup {
public:
    Pickup(const config::Config& config, queue::Store& store);
    // Picks up every complete file now; returns how many messages were queued.
    size_t run();

private:
    Result<std::string> pick(const std::string& name);
    void set_aside(const std::string& name, const std::string& why);
    // True when this file must wait: its uid is blocked or goes over a limit now.
    bool held(const std::string& name, uid_t uid, size_t recipients);

    queue::Store& store_;
    std::string maildrop_dir_;
    std::string corrupt_dir_;
    std::string myhostname_;
    std::string myorigin_;
    std::string data_directory_;
    long long message_limit_ = 0, recipient_limit_ = 0;
    policy::Limits limits_;  // unit = window, block = block time
    std::set<uid_t> exempt_;
    std::unique_ptr<policy::LimitsStore> store_limits_;
    bool store_warned_ = false;
};

}  // namespace tern::qmgr
