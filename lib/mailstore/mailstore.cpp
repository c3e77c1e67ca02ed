// Backend-independent parts of the mail store interface: see mailstore.hpp.
#include "lib/mailstore/mailstore.hpp"

#include <algorithm>
#include <array>

namespace tern::mailstore {

std::string_view special_use_name(SpecialUse use) {
    switch (use) {
    case SpecialUse::None: return "";
    case SpecialUse::All: return "\\All";
    case SpecialUse::Archive: return "\\Archive";
    case SpecialUse::Drafts: return "\\Drafts";
    case SpecialUse::Flagged: return "\\Flagged";
    case SpecialUse::Junk: return "\\Junk";
    case SpecialUse::Sent: return "\\Sent";
    case SpecialUse::Trash: return "\\Trash";
    }
    return "";
}

std::span<const std::string_view> cached_header_fields() {
    // What Thunderbird, Apple Mail, mutt and K-9 ask for in their message
    // list (BODY.PEEK[HEADER.FIELDS (...)]), plus the SORT/THREAD keys.
    static constexpr std::array<std::string_view, 16> fields = {
        "from",     "to",          "cc",         "bcc",        "subject",  "date",
        "message-id", "in-reply-to", "references", "reply-to", "sender",   "content-type",
        "priority", "x-priority",  "importance", "list-id"};
    return fields;
}

uint32_t Mailbox::seq_of(uint32_t uid) const {
    auto v = view();
    auto it = std::lower_bound(v.begin(), v.end(), uid, [](const ViewEntry& e, uint32_t u) { return e.uid < u; });
    if (it == v.end() || it->uid != uid) return 0;
    return static_cast<uint32_t>(it - v.begin()) + 1;
}

const ViewEntry* Mailbox::entry(uint32_t uid) const {
    uint32_t seq = seq_of(uid);
    return seq ? &view()[seq - 1] : nullptr;
}

Result<uint32_t> Mailbox::first_unseen() {
    auto v = view();
    for (size_t i = 0; i < v.size(); ++i)
        if (!(v[i].flags & kSeen)) return static_cast<uint32_t>(i + 1);
    return uint32_t{0};
}

std::string canonical_name(std::string_view name) {
    auto is_inbox = [](std::string_view s) {
        if (s.size() != kInbox.size()) return false;
        for (size_t i = 0; i < s.size(); ++i)
            if ((s[i] | 0x20) != (kInbox[i] | 0x20)) return false;
        return true;
    };
    if (is_inbox(name)) return std::string(kInbox);
    if (name.size() > kInbox.size() && name[kInbox.size()] == kSeparator && is_inbox(name.substr(0, kInbox.size())))
        return std::string(kInbox) + std::string(name.substr(kInbox.size()));
    return std::string(name);
}

}  // namespace tern::mailstore
