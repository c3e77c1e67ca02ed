// The POP3 snapshot of a mailbox (see maildrop.hpp).
#include "lib/pop3/maildrop.hpp"

#include <algorithm>

namespace tern::pop3 {

Result<Maildrop> Maildrop::load(std::unique_ptr<mailstore::Mailbox> mailbox) {
    Maildrop drop(std::move(mailbox));
    auto view = drop.mailbox_->view();
    std::vector<uint32_t> uids;
    uids.reserve(view.size());
    for (const auto& e : view) uids.push_back(e.uid);
    drop.messages_.reserve(uids.size());
    Status s = drop.mailbox_->for_each(uids, mailstore::kFieldSizes, [&](const mailstore::MessageData& d) {
        Message m;
        m.uid = d.uid;
        m.octets = d.crlf_size;
        drop.messages_.push_back(std::move(m));
    });
    if (!s) return s.error();
    // for_each skips messages that went between view() and the read: the
    // snapshot is what both saw.
    for (auto& m : drop.messages_) m.unique_id = drop.mailbox_->unique_id(m.uid);
    return drop;
}

Maildrop::Totals Maildrop::totals() const {
    Totals t;
    for (const auto& m : messages_) {
        if (m.deleted) continue;
        ++t.messages;
        t.octets += m.octets;
    }
    return t;
}

Result<const Maildrop::Message*> Maildrop::find(uint32_t msg) const {
    if (msg == 0 || msg > messages_.size()) return Error{"no such message"};
    const Message& m = messages_[msg - 1];
    if (m.deleted) return Error{"message " + std::to_string(msg) + " is deleted"};
    return &m;
}

Status Maildrop::mark_deleted(uint32_t msg) {
    auto m = find(msg);
    if (!m) return m.error();
    messages_[msg - 1].deleted = true;
    return {};
}

void Maildrop::mark_retrieved(uint32_t msg) {
    if (msg >= 1 && msg <= messages_.size()) messages_[msg - 1].retrieved = true;
}

size_t Maildrop::marked() const {
    return static_cast<size_t>(std::count_if(messages_.begin(), messages_.end(), [](const Message& m) { return m.deleted; }));
}

size_t Maildrop::reset() {
    size_t n = marked();
    for (auto& m : messages_) m.deleted = false;
    return n;
}

Result<std::unique_ptr<mailstore::MessageBody>> Maildrop::open(uint32_t msg) {
    auto m = find(msg);
    if (!m) return m.error();
    return mailbox_->open_body((*m)->uid);
}

Result<Maildrop::UpdateResult> Maildrop::update() {
    UpdateResult result;
    std::vector<uint32_t> doomed, seen;
    for (const auto& m : messages_) {
        if (m.deleted) doomed.push_back(m.uid);
        else if (m.retrieved) seen.push_back(m.uid);
    }
    if (doomed.empty() && seen.empty()) return result;
    // The store acts on its view: bring it up to date first, so that what
    // others removed meanwhile is known and not touched again.
    auto changes = mailbox_->refresh();
    if (!changes) return changes.error();
    auto present = [&](std::vector<uint32_t>& uids) {
        std::erase_if(uids, [&](uint32_t uid) { return mailbox_->seq_of(uid) == 0; });
    };
    size_t marked_count = doomed.size();
    present(doomed);
    present(seen);
    result.gone = marked_count - doomed.size();
    if (!seen.empty()) {
        mailstore::Flags flags;
        flags.system = mailstore::kSeen;
        auto r = mailbox_->store_flags(seen, mailstore::FlagOp::Add, flags);
        if (!r) return r.error();
    }
    if (doomed.empty()) return result;
    mailstore::Flags flags;
    flags.system = mailstore::kDeleted;
    auto r = mailbox_->store_flags(doomed, mailstore::FlagOp::Add, flags);
    if (!r) return r.error();
    // Only these UIDs: a message an IMAP client flagged \Deleted stays until
    // that client expunges it.
    auto expunged = mailbox_->expunge(std::span<const uint32_t>(doomed));
    if (!expunged) return expunged.error();
    result.deleted = expunged->expunged_uids.size();
    result.gone += doomed.size() - std::min(doomed.size(), result.deleted);
    return result;
}

}  // namespace tern::pop3
