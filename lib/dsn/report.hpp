// Delivery status notifications (bounces, delay warnings, success notices)
// as RFC 3464 multipart/report messages.
//
//   multipart/report; report-type=delivery-status        (RFC 6522)
//     1. text/plain: what happened, for a person
//     2. message/delivery-status: per-message fields (Reporting-MTA,
//        Original-Envelope-Id, Arrival-Date) then one block per recipient
//        (Final-Recipient, Original-Recipient, Action, Status,
//        Diagnostic-Code, Last-Attempt-Date)            (RFC 3464 2.2, 2.3)
//     3. message/rfc822 (RET=FULL, the default) or text/rfc822-headers
//        (RET=HDRS, or the original is over the size limit)  (RFC 3461 4.3)
//
// The text uses LF line endings like every queue body.  The original is
// streamed from its body file, never loaded whole.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"
#include "lib/dsn/policy.hpp"

namespace tern::dsn {

enum class Action { Failed, Delayed, Delivered, Relayed, Expanded };
std::string_view action_name(Action action);  // "failed", "delayed", ...

struct RecipientReport {
    std::string address;       // final recipient, without <>
    std::string orcpt;         // "rfc822;user@example.org" or ""
    Action action = Action::Failed;
    std::string status;        // "5.1.1"
    std::string diagnostic;    // "550 5.1.1 user unknown" or agent text
    int64_t last_attempt = 0;  // unix seconds, 0 = none
};

struct ReportInfo {
    NoticeKind kind = NoticeKind::Failure;
    std::string reporting_mta;     // myhostname
    std::string queue_id;          // of the original message
    std::string original_sender;   // "" for <>
    std::string report_to;         // envelope recipient of the report
    std::string envid;             // RFC 3461 ENVID or ""
    int64_t arrival = 0;           // unix seconds
    int64_t now = 0;               // Date of the report
    bool headers_only = false;     // RET=HDRS
    uint64_t original_size_limit = 0;  // 0 = no limit; larger originals: headers only
    std::string delay_text;        // for delay warnings: "for 4 hours"
};

// RFC 5322 3.3 date-time in UTC: "Tue, 24 Nov 2026 02:18:09 +0000".
std::string format_date(int64_t unix_seconds);

// Everything before the original message's content (headers, text part,
// delivery-status part, header of the third part), and the closing part.
// original_size decides whether a RET=FULL report must drop to headers.
struct ReportParts {
    std::string head;
    std::string tail;
    bool headers_only = false;  // what the third part must contain
};
ReportParts report_parts(const ReportInfo& info, const std::vector<RecipientReport>& recipients,
                         uint64_t original_size);

// The whole report, the original given in memory (tests, small messages).
std::string compose_report(const ReportInfo& info, const std::vector<RecipientReport>& recipients,
                           std::string_view original);

// Writes the report to out_fd, reading the original from original_fd
// (from offset 0, with pread; the fd's offset is left alone).
Status write_report(int out_fd, const ReportInfo& info, const std::vector<RecipientReport>& recipients,
                    int original_fd, uint64_t original_size);

// The header section of a message (up to, not including, the blank line);
// used for text/rfc822-headers.
std::string_view header_section(std::string_view message);

}  // namespace tern::dsn
