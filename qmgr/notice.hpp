// Delivery status notifications put into the queue: bounces (failed
// recipients), delay warnings, success notices.
//
// The notice is a new queue message from the null sender <> with
// is_bounce set, whose body is the RFC 3464 report (lib/dsn) written
// straight into a new body file, made durable (fsync of file and
// directory) and inserted with a synced transaction, like any received
// message.  Who gets it (RFC 3461 6.2, RFC 5321 4.5.5):
//   - the original sender;
//   - nobody when the original came from the null sender: a bounce is never
//     bounced to <> (mail loops) ...
//   - ... except that a failed tern bounce (is_bounce) is reported to the
//     postmaster once; a failed notice to the postmaster is only logged.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/result.hpp"
#include "lib/dsn/report.hpp"
#include "lib/queue/queue.hpp"

namespace tern::qmgr {

struct NoticeSettings {
    std::string myhostname;
    std::string postmaster;         // "postmaster@<myhostname>"
    uint64_t original_size_limit = 0;  // bounce_size_limit
};

// Who should receive a notice about `original`, or nullopt (with the reason
// in *why) when no notice may be sent.
std::optional<std::string> notice_recipient(const queue::Message& original, const NoticeSettings& settings,
                                            std::string* why);

// Writes and enqueues the notice; returns the new queue id.
Result<std::string> enqueue_notice(queue::Store& store, const NoticeSettings& settings,
                                   const queue::Message& original, dsn::NoticeKind kind,
                                   const std::vector<dsn::RecipientReport>& recipients,
                                   const std::string& report_to, int64_t now, const std::string& delay_text = "");

}  // namespace tern::qmgr
