// RFC 3464 delivery status notifications (see report.hpp).
#include "lib/dsn/report.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <random>

#include "lib/core/errno_text.hpp"

namespace tern::dsn {

namespace {

std::string boundary_for(const ReportInfo& info) {
    static std::mt19937_64 rng{std::random_device{}()};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
    return info.queue_id + "." + buf + "/" + info.reporting_mta;
}

// Header and report field values must stay on one line whatever a remote
// server or a client put in them.
std::string one_line(std::string_view text, size_t max = 900) {
    std::string out;
    for (char c : text) {
        if (out.size() >= max) break;
        out += (c == '\r' || c == '\n' || c == '\0') ? ' ' : c;
    }
    return out;
}

std::string diagnostic_code(std::string_view diagnostic) {
    // RFC 3464 2.3.6: "smtp" when the text is a server's reply, else our own type.
    bool smtp_reply = diagnostic.size() >= 4 && diagnostic[0] >= '2' && diagnostic[0] <= '5' &&
                      diagnostic[1] >= '0' && diagnostic[1] <= '9' && diagnostic[2] >= '0' &&
                      diagnostic[2] <= '9' && (diagnostic[3] == ' ' || diagnostic[3] == '-');
    return std::string(smtp_reply ? "smtp; " : "x-tern; ") + one_line(diagnostic);
}

std::string subject_for(NoticeKind kind) {
    switch (kind) {
    case NoticeKind::Failure: return "Undelivered Mail Returned to Sender";
    case NoticeKind::Delay: return "Delayed Mail (still being retried)";
    case NoticeKind::Success: return "Successful Mail Delivery Report";
    }
    return "";
}

std::string human_text(const ReportInfo& info, const std::vector<RecipientReport>& recipients) {
    std::string t = "This is the mail system at host " + info.reporting_mta + ".\n\n";
    switch (info.kind) {
    case NoticeKind::Failure:
        t += "I'm sorry to have to inform you that your message could not\n"
             "be delivered to one or more recipients. It's attached below.\n\n"
             "For further assistance, please send mail to postmaster.\n\n"
             "If you do so, please include this problem report. You can\n"
             "delete your own text from the attached returned message.\n\n";
        break;
    case NoticeKind::Delay:
        t += "####################################################################\n"
             "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n"
             "####################################################################\n\n"
             "Your message could not be delivered " +
             (info.delay_text.empty() ? std::string("yet") : "for " + info.delay_text) +
             ".\nIt will be retried until it is too old.\n\n";
        break;
    case NoticeKind::Success:
        t += "Your message was successfully delivered to the destination(s)\n"
             "listed below.\n\n";
        break;
    }
    t += "                   The mail system\n\n";
    for (const auto& r : recipients)
        t += "<" + one_line(r.address, 400) + ">: " + one_line(r.diagnostic) + "\n";
    return t;
}

Status write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("write report");
        }
        bytes.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

}  // namespace

std::string_view action_name(Action action) {
    switch (action) {
    case Action::Failed: return "failed";
    case Action::Delayed: return "delayed";
    case Action::Delivered: return "delivered";
    case Action::Relayed: return "relayed";
    case Action::Expanded: return "expanded";
    }
    return "failed";
}

std::string format_date(int64_t unix_seconds) {
    time_t t = static_cast<time_t>(unix_seconds);
    struct tm tm {};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return buf;
}

std::string_view header_section(std::string_view message) {
    if (!message.empty() && message[0] == '\n') return {};
    size_t end = message.find("\n\n");
    if (end == std::string_view::npos) return message;
    return message.substr(0, end + 1);
}

ReportParts report_parts(const ReportInfo& info, const std::vector<RecipientReport>& recipients,
                         uint64_t original_size) {
    ReportParts parts;
    parts.headers_only =
        info.headers_only || (info.original_size_limit > 0 && original_size > info.original_size_limit);
    std::string b = boundary_for(info);
    std::string& h = parts.head;
    h += "From: MAILER-DAEMON@" + info.reporting_mta + " (Mail Delivery System)\n";
    h += "To: " + (info.report_to.empty() ? std::string("postmaster") : one_line(info.report_to, 400)) + "\n";
    h += "Subject: " + subject_for(info.kind) + "\n";
    h += "Date: " + format_date(info.now) + "\n";
    h += "Message-ID: <" + info.queue_id + "." + std::to_string(info.now) + ".dsn@" + info.reporting_mta + ">\n";
    h += "Auto-Submitted: auto-replied\n";  // RFC 3834 5: no automatic reply to this
    h += "MIME-Version: 1.0\n";
    h += "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"" + b + "\"\n";
    h += "Content-Transfer-Encoding: 8bit\n\n";
    h += "This is a MIME-encapsulated message.\n\n";

    h += "--" + b + "\n";
    h += "Content-Description: Notification\nContent-Type: text/plain; charset=utf-8\n\n";
    h += human_text(info, recipients);
    h += "\n--" + b + "\n";

    // RFC 3464 2.2: per-message fields.
    h += "Content-Description: Delivery report\nContent-Type: message/delivery-status\n\n";
    h += "Reporting-MTA: dns; " + info.reporting_mta + "\n";
    h += "X-Tern-Queue-ID: " + info.queue_id + "\n";
    if (!info.envid.empty()) h += "Original-Envelope-Id: " + one_line(info.envid, 200) + "\n";
    h += "X-Tern-Sender: rfc822; " + one_line(info.original_sender, 400) + "\n";
    if (info.arrival > 0) h += "Arrival-Date: " + format_date(info.arrival) + "\n";
    // RFC 3464 2.3: one block per recipient, each after a blank line.
    for (const auto& r : recipients) {
        h += "\nFinal-Recipient: rfc822; " + one_line(r.address, 400) + "\n";
        if (!r.orcpt.empty()) h += "Original-Recipient: " + one_line(r.orcpt, 400) + "\n";
        h += "Action: " + std::string(action_name(r.action)) + "\n";
        h += "Status: " + one_line(r.status, 20) + "\n";
        if (!r.diagnostic.empty()) h += "Diagnostic-Code: " + diagnostic_code(r.diagnostic) + "\n";
        if (r.last_attempt > 0) h += "Last-Attempt-Date: " + format_date(r.last_attempt) + "\n";
    }
    h += "\n--" + b + "\n";
    if (parts.headers_only)
        h += "Content-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers\n\n";
    else
        h += "Content-Description: Undelivered Message\nContent-Type: message/rfc822\n\n";
    parts.tail = "\n--" + b + "--\n";
    return parts;
}

std::string compose_report(const ReportInfo& info, const std::vector<RecipientReport>& recipients,
                           std::string_view original) {
    ReportParts p = report_parts(info, recipients, original.size());
    std::string out = p.head;
    out += p.headers_only ? header_section(original) : original;
    out += p.tail;
    return out;
}

Status write_report(int out_fd, const ReportInfo& info, const std::vector<RecipientReport>& recipients,
                    int original_fd, uint64_t original_size) {
    ReportParts p = report_parts(info, recipients, original_size);
    if (auto st = write_all(out_fd, p.head); !st) return st;
    std::string buf(65536, '\0');
    off_t offset = 0;
    std::string headers;  // headers-only mode: collected until the blank line
    for (;;) {
        ssize_t n = ::pread(original_fd, buf.data(), buf.size(), offset);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("read original message");
        }
        if (n == 0) break;
        offset += n;
        std::string_view chunk(buf.data(), static_cast<size_t>(n));
        if (!p.headers_only) {
            if (auto st = write_all(out_fd, chunk); !st) return st;
            continue;
        }
        size_t from = headers.empty() ? 0 : headers.size() - 1;
        headers += chunk;
        bool ends = (!headers.empty() && headers[0] == '\n') ||
                    headers.find("\n\n", from) != std::string::npos;
        if (ends || headers.size() > 1024 * 1024) break;
    }
    if (p.headers_only) {
        if (auto st = write_all(out_fd, header_section(headers)); !st) return st;
    }
    return write_all(out_fd, p.tail);
}

}  // namespace tern::dsn
