// QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT, SETQUOTA and the STATUS item
// DELETED-STORAGE.  A user has one quota root, "", over all folders: the
// Maildir++ quota local-delivery enforces (the auth daemon's answer carries
// it).  Only the STORAGE resource is offered: tern sets no message-count
// limit.  Figures are in units of 1024 octets, rounded up.  SETQUOTA is
// answered NO: the administrator sets quotas in the users table.
#include "imapd/session.hpp"
#include "lib/imap/response.hpp"
#include "lib/log/log.hpp"

namespace tern::imapd {

using imap::Parser;

namespace {

// The quota root every folder of a user belongs to.
constexpr std::string_view kQuotaRoot = "";

uint64_t kibibytes(uint64_t bytes) { return bytes / 1024 + (bytes % 1024 != 0); }

}  // namespace

bool Session::quota_response() {
    auto usage = store_->quota_usage();
    if (!usage) {
        log::warning("user %s: reading the quota: %s", user_.c_str(), usage.message().c_str());
        tagged("NO", "SERVERBUG", "cannot read the quota");
        return false;
    }
    std::string line = "QUOTA ";
    imap::append_astring(line, kQuotaRoot);
    line += " (STORAGE " + std::to_string(kibibytes(usage->bytes)) + " " +
            std::to_string(kibibytes(usage->limit_bytes)) + ")";
    untagged(line);
    return true;
}

void Session::cmd_getquota(Parser& p) {
    if (!p.sp()) return bad_syntax(p);
    auto root = p.astring();
    if (!root || !p.end()) return bad_syntax(p);
    if (*root != kQuotaRoot || quota_ == 0)
        return (void)tagged("NO", "NONEXISTENT", "no such quota root");
    if (!quota_response()) return;
    if (state_ == State::Selected) refresh_and_report();
    tagged("OK", "", "GETQUOTA completed");
}

void Session::cmd_getquotaroot(Parser& p) {
    if (!p.sp()) return bad_syntax(p);
    auto name = mailbox_arg(p);
    if (!name) return;
    if (!p.end()) return bad_syntax(p);
    auto exists = store_->exists(*name);
    if (!exists || !*exists) return (void)tagged("NO", "NONEXISTENT", "no such mailbox");
    std::string line = "QUOTAROOT " + wire_name(*name);
    if (quota_ > 0) {
        line += ' ';
        imap::append_astring(line, kQuotaRoot);
    }
    untagged(line);
    if (quota_ > 0 && !quota_response()) return;
    if (state_ == State::Selected) refresh_and_report();
    tagged("OK", "", "GETQUOTAROOT completed");
}

void Session::cmd_setquota(Parser& p) {
    // setquota = "SETQUOTA" SP quota-root-name SP setquota-list: checked for
    // syntax, then refused (no QUOTASET capability).
    if (!p.sp()) return bad_syntax(p);
    auto root = p.astring();
    if (!root || !p.sp() || !p.expect('(')) return bad_syntax(p);
    for (bool first = true; !p.take(')'); first = false) {
        if (!first && !p.sp()) return bad_syntax(p);
        if (!p.keyword() || !p.sp() || !p.number64()) return bad_syntax(p);
    }
    if (!p.end()) return bad_syntax(p);
    tagged("NO", "NOPERM", "quotas are set by the administrator (mailctl user add --quota)");
}

uint64_t Session::deleted_storage(const std::string& name) {
    std::unique_ptr<mailstore::Mailbox> other;
    mailstore::Mailbox* box = mailbox_ && mailbox_->name() == name ? mailbox_.get() : nullptr;
    if (!box) {
        auto opened = store_->open(name, true);
        if (!opened) return 0;
        other = std::move(*opened);
        box = other.get();
    }
    std::vector<uint32_t> uids;
    for (const auto& e : box->view())
        if (e.flags & mailstore::kDeleted) uids.push_back(e.uid);
    uint64_t bytes = 0;
    if (!uids.empty())
        (void)box->for_each(uids, mailstore::kFieldSizes, [&](const mailstore::MessageData& m) { bytes += m.size; });
    return kibibytes(bytes);
}

}  // namespace tern::imapd
