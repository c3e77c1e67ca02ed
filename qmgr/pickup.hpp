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
#pragma once

#include <string>

#include "lib/config/config.hpp"
#include "lib/core/result.hpp"
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

    queue::Store& store_;
    std::string maildrop_dir_;
    std::string corrupt_dir_;
    std::string myhostname_;
    std::string myorigin_;
};

}  // namespace tern::qmgr
