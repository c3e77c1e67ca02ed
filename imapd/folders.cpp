// Folder commands: NAMESPACE, LIST/LSUB (RFC 5258 LIST-EXTENDED, RFC 5819
// LIST-STATUS, RFC 6154 SPECIAL-USE, RFC 3348 CHILDREN), STATUS (RFC 8438
// SIZE, RFC 7162 HIGHESTMODSEQ), SELECT/EXAMINE (with CONDSTORE/QRESYNC),
// CREATE, DELETE, RENAME, SUBSCRIBE, APPEND (MULTIAPPEND, UIDPLUS), CLOSE
// and UNSELECT.
//
// Names: the store keeps UTF-8 with "/" between levels; the wire carries
// UTF-8 for IMAP4rev2 / UTF8=ACCEPT clients and modified UTF-7 otherwise.
#include <sched.h>

#include <algorithm>
#include <map>
#include <set>

#include "imapd/server.hpp"
#include "imapd/session.hpp"
#include "lib/imap/mutf7.hpp"
#include "lib/imap/response.hpp"
#include "lib/log/log.hpp"
#include "lib/tls/server_connection.hpp"

namespace tern::imapd {

using imap::Parser;
using mailstore::kSeparator;

namespace {

// Pattern match of RFC 9051 6.3.9: "*" matches anything, "%" anything but
// the separator.  Dynamic programming, so "%*%*%*..." cannot explode.
bool pattern_matches(std::string_view pattern, std::string_view name) {
    const size_t n = name.size();
    std::vector<char> prev(n + 1, 0), cur(n + 1, 0);
    prev[0] = 1;
    for (char pc : pattern) {
        std::fill(cur.begin(), cur.end(), 0);
        if (pc == '*' || pc == '%') {
            cur[0] = prev[0];
            for (size_t j = 1; j <= n; ++j)
                cur[j] = prev[j] || (cur[j - 1] && (pc == '*' || name[j - 1] != kSeparator));
        } else {
            for (size_t j = 1; j <= n; ++j) cur[j] = prev[j - 1] && name[j - 1] == pc;
        }
        std::swap(prev, cur);
    }
    return prev[n];
}

// "inbox/x" in a pattern or name means INBOX/x (INBOX is case-insensitive).
std::string canonical_pattern(std::string_view p) {
    if (p.size() >= 5 && imap::iequals(p.substr(0, 5), "INBOX") && (p.size() == 5 || p[5] == kSeparator))
        return "INBOX" + std::string(p.substr(5));
    return std::string(p);
}

// STATUS data items (RFC 9051 6.3.11, RFC 7162 HIGHESTMODSEQ, RFC 8438
// SIZE, RFC 7889 APPENDLIMIT, RFC 9208 DELETED-STORAGE), for STATUS and
// LIST ... RETURN (STATUS (...)).
bool known_status_item(std::string_view item) {
    static constexpr std::string_view known[] = {"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED",
                                                 "SIZE", "RECENT", "HIGHESTMODSEQ", "APPENDLIMIT",
                                                 "DELETED-STORAGE"};
    return std::find(std::begin(known), std::end(known), item) != std::end(known);
}

}  // namespace

bool to_store_flags(const std::vector<std::string>& list, mailstore::Flags& flags, std::string& error) {
    static const struct { const char* name; uint8_t bit; } system[] = {
        {"\\Seen", mailstore::kSeen}, {"\\Answered", mailstore::kAnswered}, {"\\Flagged", mailstore::kFlagged},
        {"\\Deleted", mailstore::kDeleted}, {"\\Draft", mailstore::kDraft}};
    for (const auto& f : list) {
        if (f[0] == '\\') {
            bool known = false;
            for (const auto& s : system)
                if (imap::iequals(f, s.name)) { flags.system |= s.bit; known = true; }
            // \Recent cannot be set (RFC 9051 dropped it; RFC 3501 2.3.2).
            if (!known && !imap::iequals(f, "\\Recent")) {
                error = "unknown system flag " + f;
                return false;
            }
            continue;
        }
        if (std::find(flags.keywords.begin(), flags.keywords.end(), f) == flags.keywords.end())
            flags.keywords.push_back(f);
    }
    if (flags.keywords.size() > mailstore::kMaxKeywords) {
        error = "too many keywords (at most " + std::to_string(mailstore::kMaxKeywords) + ")";
        return false;
    }
    return true;
}

std::optional<std::string> Session::mailbox_arg(Parser& p) {
    auto raw = p.astring();
    if (!raw) {
        bad_syntax(p);
        return std::nullopt;
    }
    std::string name;
    if (rev2_ || utf8_) {
        if (!imap::valid_utf8(*raw)) {
            tagged("BAD", "", "mailbox name is not valid UTF-8");
            return std::nullopt;
        }
        name = std::move(*raw);
    } else {
        auto decoded = imap::mutf7_decode(*raw);
        if (!decoded) {
            tagged("BAD", "", "mailbox name is not valid modified UTF-7 (RFC 3501 5.1.3)");
            return std::nullopt;
        }
        name = std::move(*decoded);
    }
    while (name.size() > 1 && name.back() == kSeparator) name.pop_back();
    return mailstore::canonical_name(name);
}

std::string Session::wire_name(std::string_view name) const {
    std::string out;
    if (rev2_ || utf8_) imap::append_astring(out, name, true);
    else imap::append_astring(out, imap::mutf7_encode(name).value_or(std::string(name)));
    return out;
}

void Session::cmd_namespace(Parser& p) {
    if (!p.end()) return bad_syntax(p);
    untagged("NAMESPACE ((\"\" \"/\")) NIL NIL");
    tagged("OK", "", "NAMESPACE completed");
}

void Session::cmd_list(Parser& p, bool lsub) {
    // LIST [SP (select-opts)] SP reference SP (pattern / "(" patterns ")") [SP RETURN (opts)]
    bool sel_subscribed = false, recursive = false, sel_special = false;
    bool ret_subscribed = false, ret_children = true, ret_special = true;
    std::vector<std::string> status_wanted;
    bool extended = false;
    if (!p.sp()) return bad_syntax(p);
    if (!lsub && p.peek('(')) {
        extended = true;
        p.take('(');
        while (!p.take(')')) {
            auto w = p.keyword();
            if (!w) return bad_syntax(p);
            std::string o = imap::upper(*w);
            if (o == "SUBSCRIBED") sel_subscribed = true;
            else if (o == "RECURSIVEMATCH") recursive = true;
            else if (o == "SPECIAL-USE") sel_special = true;
            else if (o != "REMOTE") return (void)tagged("BAD", "", "unknown LIST selection option " + o);
            p.take(' ');
        }
        if (recursive && !sel_subscribed && !sel_special)
            return (void)tagged("BAD", "", "RECURSIVEMATCH needs another selection option");
        if (!p.sp()) return bad_syntax(p);
    }
    auto reference = p.astring();
    if (!reference || !p.sp()) return bad_syntax(p);
    std::vector<std::string> patterns;
    if (!lsub && p.take('(')) {
        extended = true;
        while (true) {
            auto pat = p.list_mailbox();
            if (!pat) return bad_syntax(p);
            patterns.push_back(std::move(*pat));
            if (p.take(')')) break;
            if (!p.sp()) return bad_syntax(p);
        }
    } else {
        auto pat = p.list_mailbox();
        if (!pat) return bad_syntax(p);
        patterns.push_back(std::move(*pat));
    }
    if (!lsub && p.take(' ')) {
        auto w = p.keyword();
        if (!w || !imap::iequals(*w, "RETURN") || !p.sp() || !p.expect('(')) return bad_syntax(p);
        while (!p.take(')')) {
            auto o = p.keyword();
            if (!o) return bad_syntax(p);
            std::string opt = imap::upper(*o);
            if (opt == "SUBSCRIBED") ret_subscribed = true;
            else if (opt == "CHILDREN") ret_children = true;
            else if (opt == "SPECIAL-USE") ret_special = true;
            else if (opt == "STATUS") {
                if (!p.sp() || !p.expect('(')) return bad_syntax(p);
                while (!p.take(')')) {
                    if (!status_wanted.empty() && !p.sp()) return bad_syntax(p);
                    auto item = p.keyword();
                    if (!item) return bad_syntax(p);
                    std::string name = imap::upper(*item);
                    if (!known_status_item(name)) return (void)tagged("BAD", "", "unknown STATUS item " + name);
                    status_wanted.push_back(name);
                }
                if (status_wanted.empty()) return (void)tagged("BAD", "", "RETURN STATUS needs at least one item");
            } else {
                return (void)tagged("BAD", "", "unknown LIST return option " + opt);
            }
            p.take(' ');
        }
    }
    if (!p.end()) return bad_syntax(p);
    (void)extended;

    // LIST "" "": the hierarchy delimiter and root (RFC 9051 6.3.9).
    if (patterns.size() == 1 && patterns[0].empty()) {
        untagged(std::string(lsub ? "LSUB" : "LIST") + " (\\Noselect) \"/\" \"\"");
        return tagged("OK", "", std::string(lsub ? "LSUB" : "LIST") + " completed");
    }
    auto decode = [&](const std::string& s) -> std::optional<std::string> {
        if (rev2_ || utf8_) return s;
        return imap::mutf7_decode(s);
    };
    auto ref = decode(*reference);
    if (!ref) return (void)tagged("BAD", "", "reference is not valid modified UTF-7");
    std::vector<std::string> full_patterns;
    for (const auto& pat : patterns) {
        auto d = decode(pat);
        if (!d) return (void)tagged("BAD", "", "pattern is not valid modified UTF-7");
        std::string full = *ref;
        if (!full.empty() && full.back() != kSeparator && !d->empty() && (*d)[0] != kSeparator && !ref->empty())
            full += kSeparator;
        full += *d;
        full_patterns.push_back(canonical_pattern(full));
    }
    auto folders = store_->list_folders();
    if (!folders) {
        log::warning("user %s: LIST: %s", user_.c_str(), folders.message().c_str());
        return (void)tagged("NO", "SERVERBUG", "cannot list folders, try again later");
    }
    auto subs_list = store_->subscriptions();
    std::set<std::string> subscribed;
    if (subs_list) subscribed.insert(subs_list->begin(), subs_list->end());
    std::map<std::string, const mailstore::FolderInfo*> by_name;
    for (const auto& f : *folders) by_name[f.name] = &f;
    auto matches = [&](const std::string& name) {
        for (const auto& pat : full_patterns)
            if (pattern_matches(pat, name)) return true;
        return false;
    };

    struct Line {
        std::string name;
        std::string attrs;
        std::string extra;
        bool status = false;
    };
    std::vector<Line> lines;
    std::set<std::string> listed;
    auto attrs_of = [&](const mailstore::FolderInfo& f, bool is_sub) {
        std::string a;
        auto add = [&](std::string_view s) { if (!a.empty()) a += ' '; a.append(s); };
        if (!f.selectable) add("\\Noselect");
        if (ret_children || !lsub) add(f.has_children ? "\\HasChildren" : "\\HasNoChildren");
        if ((ret_subscribed || sel_subscribed) && is_sub) add("\\Subscribed");
        if (ret_special && f.special_use != mailstore::SpecialUse::None) add(mailstore::special_use_name(f.special_use));
        return a;
    };
    if (lsub || sel_subscribed) {
        // Subscribed names, existing or not (\NonExistent), and with
        // RECURSIVEMATCH the parents of matching subscribed children.
        for (const auto& name : subscribed) {
            if (matches(name)) {
                auto it = by_name.find(name);
                Line l{name, "", "", false};
                if (it != by_name.end()) {
                    l.attrs = lsub ? (it->second->selectable ? "" : "\\Noselect") : attrs_of(*it->second, true);
                    l.status = it->second->selectable;
                } else {
                    l.attrs = lsub ? "\\Noselect" : "\\NonExistent \\Subscribed";
                }
                lines.push_back(std::move(l));
                listed.insert(name);
            }
        }
        if (recursive) {
            for (const auto& name : subscribed) {
                for (size_t pos = name.find(kSeparator); pos != std::string::npos; pos = name.find(kSeparator, pos + 1)) {
                    std::string parent = name.substr(0, pos);
                    if (listed.count(parent) || !matches(parent)) continue;
                    auto it = by_name.find(parent);
                    Line l{parent, it != by_name.end() ? attrs_of(*it->second, false) : "\\NonExistent", "",
                           it != by_name.end() && it->second->selectable};
                    l.extra = " (\"CHILDINFO\" (\"SUBSCRIBED\"))";
                    lines.push_back(std::move(l));
                    listed.insert(parent);
                }
            }
        }
    } else {
        for (const auto& f : *folders) {
            if (!matches(f.name)) continue;
            if (sel_special && f.special_use == mailstore::SpecialUse::None) continue;
            lines.push_back(Line{f.name, attrs_of(f, subscribed.count(f.name) > 0), "", f.selectable});
        }
    }
    std::sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
        if (a.name == "INBOX") return b.name != "INBOX";
        if (b.name == "INBOX") return false;
        return a.name < b.name;
    });
    for (const auto& l : lines) {
        untagged(std::string(lsub ? "LSUB" : "LIST") + " (" + l.attrs + ") \"/\" " + wire_name(l.name) + l.extra);
        if (!status_wanted.empty() && l.status) {
            auto st = (mailbox_ && mailbox_->name() == l.name) ? Result<mailstore::MailboxStatus>(mailbox_->status())
                                                              : store_->status(l.name);
            if (st) untagged("STATUS " + wire_name(l.name) + " (" + status_items(l.name, *st, status_wanted) + ")");
        }
    }
    tagged("OK", "", std::string(lsub ? "LSUB" : "LIST") + " completed");
}

std::string Session::status_items(const std::string& name, const mailstore::MailboxStatus& st,
                                  const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += ' ';
        out += item + ' ';
        if (item == "MESSAGES") out += std::to_string(st.messages);
        else if (item == "UIDNEXT") out += std::to_string(st.uidnext);
        else if (item == "UIDVALIDITY") out += std::to_string(st.uidvalidity);
        else if (item == "UNSEEN") out += std::to_string(st.unseen);
        else if (item == "DELETED") out += std::to_string(st.deleted);
        else if (item == "SIZE") out += std::to_string(st.size);
        else if (item == "RECENT") out += std::to_string(st.recent);
        else if (item == "HIGHESTMODSEQ") out += std::to_string(st.highestmodseq);
        else if (item == "APPENDLIMIT") out += std::to_string(server_.settings().limits.append_max);
        else if (item == "DELETED-STORAGE") out += std::to_string(deleted_storage(name));
    }
    return out;
}

void Session::cmd_status(Parser& p) {
    if (!p.sp()) return bad_syntax(p);
    auto name = mailbox_arg(p);
    if (!name) return;
    if (!p.sp() || !p.expect('(')) return bad_syntax(p);
    std::vector<std::string> items;
    while (!p.take(')')) {
        if (!items.empty() && !p.sp()) return bad_syntax(p);
        auto w = p.keyword();
        if (!w) return bad_syntax(p);
        std::string item = imap::upper(*w);
        if (!known_status_item(item)) return (void)tagged("BAD", "", "unknown STATUS item " + item);
        items.push_back(item);
    }
    if (items.empty()) return (void)tagged("BAD", "", "STATUS needs at least one item");
    if (!p.end()) return bad_syntax(p);
    auto st = (mailbox_ && mailbox_->name() == *name) ? Result<mailstore::MailboxStatus>(mailbox_->status())
                                                      : store_->status(*name);
    if (!st) return (void)tagged("NO", "NONEXISTENT", "no such mailbox");
    untagged("STATUS " + wire_name(*name) + " (" + status_items(*name, *st, items) + ")");
    if (state_ == State::Selected) refresh_and_report();
    tagged("OK", "", "STATUS completed");
}

void Session::unselect() {
    notify_ = event::Watch();
    mailbox_.reset();
    saved_.clear();
    state_ = State::Authenticated;
}

void Session::cmd_select(Parser& p, bool read_only) {
    if (!p.sp()) return bad_syntax(p);
    auto name = mailbox_arg(p);
    if (!name) return;
    SelectRequest r;
    r.name = std::move(*name);
    r.read_only = read_only;
    if (p.take(' ')) {
        if (!p.expect('(')) return bad_syntax(p);
        while (!p.take(')')) {
            auto w = p.keyword();
            if (!w) return bad_syntax(p);
            std::string o = imap::upper(*w);
            if (o == "CONDSTORE") {
                r.condstore = true;
            } else if (o == "QRESYNC") {
                if (!qresync_) return (void)tagged("BAD", "", "QRESYNC must be enabled first (ENABLE QRESYNC)");
                // QRESYNC (uidvalidity modseq [known-uids [seq-match-data]])
                if (!p.sp() || !p.expect('(')) return bad_syntax(p);
                auto v = p.nz_number();
                if (!v || !p.sp()) return bad_syntax(p);
                auto m = p.number64();
                if (!m) return bad_syntax(p);
                r.q_uidvalidity = *v;
                r.q_modseq = *m;
                if (p.take(' ')) {
                    if (!p.peek('(')) {
                        r.q_known = imap::SequenceSet::parse(p);
                        if (!r.q_known) return bad_syntax(p);
                        p.take(' ');
                    }
                    if (p.take('(')) {  // seq-match-data: accepted, not needed for a correct answer
                        if (!imap::SequenceSet::parse(p) || !p.sp() || !imap::SequenceSet::parse(p) || !p.expect(')'))
                            return bad_syntax(p);
                    }
                }
                if (!p.expect(')')) return bad_syntax(p);
            } else {
                return (void)tagged("BAD", "", "unknown SELECT parameter " + o);
            }
            p.take(' ');
        }
    }
    if (!p.end()) return bad_syntax(p);
    // The answer leaves as soon as the store knows it (see
    // mailstore::EarlyAnswer: before a folder's first build writes the
    // records, or before a cold index is opened), straight to the socket,
    // since this loop is busy until open() returns and no command is read
    // meanwhile.  (Not with QRESYNC's known state: its answer needs the
    // records, and a new index has a new UIDVALIDITY.)
    bool answer_early = !r.q_uidvalidity && tls::may_send_now(bev_);
    std::string closed;
    if (mailbox_) {
        unselect();
        // RFC 7162 3.2.11 / RFC 9051 7.1: the previous mailbox is closed.
        capture_ = &closed;
        untagged("OK [CLOSED] previous mailbox closed");
        capture_ = nullptr;
        if (!answer_early) send(closed);
    }
    bool answered = false, broken = false;
    mailstore::EarlyAnswer early = [&](const mailstore::OpenAnswer& a) {
        std::string text = closed;
        capture_ = &text;
        select_answer(r, a, read_only);
        tagged("OK", read_only ? "READ-ONLY" : "READ-WRITE", std::string(read_only ? "EXAMINE" : "SELECT") + " completed");
        capture_ = nullptr;
        auto sent = tls::send_now(bev_, text);
        answered = sent == tls::SendNow::Sent;
        broken = sent == tls::SendNow::Broken;
        // The socket's wake-up puts a local client on this CPU, expecting
        // this process to sleep next; it works on instead (the open, the
        // build): let the client read its answer first.
        if (answered) ::sched_yield();
    };
    auto box = store_->open(r.name, read_only, /*claim_recent=*/true, answer_early ? &early : nullptr);
    if (broken) return close_now("lost connection while sending");
    if (answer_early && !answered) send(closed);
    if (!box) {
        if (!answered)
            if (auto exists = store_->exists(r.name); exists && !*exists)
                return (void)tagged("NO", "NONEXISTENT", "no such mailbox");
        log::warning("user %s: SELECT %s: %s", user_.c_str(), r.name.c_str(), box.message().c_str());
        // The client was told of a state that was never stored: it must not
        // go on with it (RFC 9051 7.1.5).
        if (answered) return bye_and_close("[UNAVAILABLE] the mailbox could not be opened, try again later");
        return (void)tagged("NO", "UNAVAILABLE", "cannot open the mailbox, try again later");
    }
    selected(std::move(*box), r, answered);
}

void Session::select_answer(const SelectRequest& r, const mailstore::OpenAnswer& a, bool read_only) {
    std::string flags = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";
    for (const auto& k : a.keywords) flags += " " + k;
    untagged("FLAGS (" + flags + ")");
    untagged("OK [PERMANENTFLAGS (" + (read_only ? std::string() : flags + " \\*") + ")] flags permitted");
    untagged(std::to_string(a.status.messages) + " EXISTS");
    if (!rev2_) {
        untagged(std::to_string(a.status.recent) + " RECENT");
        if (a.first_unseen) untagged("OK [UNSEEN " + std::to_string(a.first_unseen) + "] first unseen message");
    }
    untagged("OK [UIDVALIDITY " + std::to_string(a.status.uidvalidity) + "] UIDs valid");
    untagged("OK [UIDNEXT " + std::to_string(a.status.uidnext) + "] predicted next UID");
    untagged("OK [HIGHESTMODSEQ " + std::to_string(a.status.highestmodseq) + "] highest mod-sequence");
    if (rev2_) untagged("LIST () \"/\" " + wire_name(r.name));
}

void Session::selected(std::unique_ptr<mailstore::Mailbox> box, const SelectRequest& r, bool answered) {
    mailbox_ = std::move(box);
    // Every SELECT takes the messages that arrived since the last one as
    // its \Recent ones (RFC 3501 2.3.2), also in IMAP4rev2 where they are
    // not shown: "recent" means new since any session last looked.
    if (auto claimed = mailbox_->claim_recent(); !claimed)
        log::warning("user %s: SELECT %s: \\Recent: %s", user_.c_str(), r.name.c_str(), claimed.message().c_str());
    if (r.condstore) condstore_ = true;
    state_ = State::Selected;
    saved_.clear();
    // FETCH FLAGS usually follows: the view's pages are asked for after
    // [UNSEEN n] read what it needs (not queued behind them), and after the
    // answer has left (asking for 3 MB of a 100,000-message folder takes
    // the kernel ~0.4 ms): a timer due at once runs after the loop has
    // polled the client's socket, so its write goes first.
    view_prefetch_.add_after_poll();
    if (answered) return;
    mailstore::OpenAnswer a;
    a.status = mailbox_->status();
    a.keywords = mailbox_->keywords();
    if (!rev2_)
        if (auto unseen = mailbox_->first_unseen(); unseen) a.first_unseen = *unseen;
    select_answer(r, a, mailbox_->read_only());
    const auto& st = a.status;
    if (r.q_uidvalidity && *r.q_uidvalidity == st.uidvalidity) {
        // RFC 7162 3.2.5: what vanished and what changed since the client's modseq.
        bool complete = true;
        auto gone = mailbox_->vanished_since(r.q_modseq, complete);
        std::vector<uint32_t> vanished;
        uint32_t uidmax = st.uidnext > 0 ? st.uidnext - 1 : 0;
        if (gone)
            for (uint32_t u : *gone)
                if (!r.q_known || r.q_known->contains(u, uidmax)) vanished.push_back(u);
        if (!complete && r.q_known) {
            // The store forgot old expunges: every known UID not in the view vanished.
            for (const auto& range : r.q_known->resolve(uidmax))
                for (uint64_t u = range.lo; u <= range.hi && u < st.uidnext; ++u)
                    if (!mailbox_->seq_of(static_cast<uint32_t>(u))) vanished.push_back(static_cast<uint32_t>(u));
            std::sort(vanished.begin(), vanished.end());
            vanished.erase(std::unique(vanished.begin(), vanished.end()), vanished.end());
        }
        if (!vanished.empty()) untagged("VANISHED (EARLIER) " + imap::format_sequence_set(vanished));
        auto view = mailbox_->view();
        for (size_t i = 0; i < view.size(); ++i) {
            if (view[i].modseq <= r.q_modseq) continue;
            untagged(std::to_string(i + 1) + " FETCH (UID " + std::to_string(view[i].uid) + " FLAGS (" +
                     flags_text(view[i].uid, view[i].flags, view[i].keywords) + ") MODSEQ (" + std::to_string(view[i].modseq) + "))");
        }
    }
    tagged("OK", mailbox_->read_only() ? "READ-ONLY" : "READ-WRITE",
           std::string(r.read_only ? "EXAMINE" : "SELECT") + " completed");
}

void Session::cmd_close(Parser& p, bool expunge) {
    if (!p.end()) return bad_syntax(p);
    // CLOSE expunges silently (RFC 9051 6.4.1); UNSELECT does not (RFC 3691).
    if (expunge && !mailbox_->read_only()) {
        auto r = mailbox_->expunge();
        if (!r) log::warning("user %s: CLOSE expunge: %s", user_.c_str(), r.message().c_str());
    }
    unselect();
    tagged("OK", "", std::string(expunge ? "CLOSE" : "UNSELECT") + " completed");
}

void Session::cmd_create(Parser& p) {
    if (!p.sp()) return bad_syntax(p);
    auto name = mailbox_arg(p);
    if (!name) return;
    if (!p.end()) return bad_syntax(p);
    if (name->empty() || (*name)[0] == kSeparator) return (void)tagged("NO", "CANNOT", "invalid mailbox name");
    auto exists = store_->exists(*name);
    if (*name == "INBOX" || (exists && *exists)) return (void)tagged("NO", "ALREADYEXISTS", "mailbox already exists");
    if (Status s = store_->create_folder(*name); !s) return (void)tagged("NO", "CANNOT", s.message());
    tagged("OK", "", "CREATE completed");
}

void Session::cmd_delete(Parser& p) {
    if (!p.sp()) return bad_syntax(p);
    auto name = mailbox_arg(p);
    if (!name) return;
    if (!p.end()) return bad_syntax(p);
    if (*name == "INBOX") return (void)tagged("NO", "CANNOT", "INBOX cannot be deleted");
    auto folders = store_->list_folders();
    bool found = false;
    if (folders)
        for (const auto& f : *folders) found |= f.name == *name;
    if (!found) return (void)tagged("NO", "NONEXISTENT", "no such mailbox");
    if (mailbox_ && mailbox_->name() == *name) unselect();
    if (Status s = store_->delete_folder(*name); !s) return (void)tagged("NO", "CANNOT", s.message());
    tagged("OK", "", "DELETE completed");
}

void Session::cmd_rename(Parser& p) {
    if (!p.sp()) return bad_syntax(p);
    auto from = mailbox_arg(p);
    if (!from) return;
    if (!p.sp()) return bad_syntax(p);
    auto to = mailbox_arg(p);
    if (!to) return;
    if (!p.end()) return bad_syntax(p);
    auto from_exists = store_->exists(*from);
    if (!from_exists || !*from_exists) return (void)tagged("NO", "NONEXISTENT", "no such mailbox");
    auto to_exists = store_->exists(*to);
    if (*to == "INBOX" || (to_exists && *to_exists)) return (void)tagged("NO", "ALREADYEXISTS", "target mailbox exists");
    if (Status s = store_->rename_folder(*from, *to); !s) return (void)tagged("NO", "CANNOT", s.message());
    tagged("OK", "", "RENAME completed");
}

void Session::cmd_subscribe(Parser& p, bool on) {
    if (!p.sp()) return bad_syntax(p);
    auto name = mailbox_arg(p);
    if (!name) return;
    if (!p.end()) return bad_syntax(p);
    if (Status s = store_->subscribe(*name, on); !s) return (void)tagged("NO", "CANNOT", s.message());
    tagged("OK", "", std::string(on ? "SUBSCRIBE" : "UNSUBSCRIBE") + " completed");
}

void Session::cmd_append(Parser& p) {
    // APPEND mailbox 1*(SP [flag-list SP] [date-time SP] literal)  (RFC 3502 MULTIAPPEND)
    if (!p.sp()) return bad_syntax(p);
    auto name = mailbox_arg(p);
    if (!name) return;
    struct Message {
        mailstore::Flags flags;
        int64_t date = 0;
        int zone = 0;
        std::string data;
    };
    std::vector<Message> messages;
    while (p.take(' ')) {
        Message m;
        if (p.peek('(')) {
            auto list = p.flag_list();
            if (!list) return bad_syntax(p);
            std::string error;
            if (!to_store_flags(*list, m.flags, error)) return (void)tagged("BAD", "", error);
            if (!p.sp()) return bad_syntax(p);
        }
        if (p.peek('"')) {
            auto dt = p.date_time();
            if (!dt || !p.sp()) return bad_syntax(p);
            m.date = dt->utc;
            m.zone = dt->zone_minutes;
        }
        auto data = p.string(true);
        if (!data) return bad_syntax(p);
        if (data->empty()) return (void)tagged("NO", "", "an empty message cannot be appended");
        m.data = std::move(*data);
        messages.push_back(std::move(m));
    }
    if (messages.empty() || !p.end()) return bad_syntax(p);
    auto exists = store_->exists(*name);
    if (!exists || !*exists) return (void)tagged("NO", "TRYCREATE", "no such mailbox; CREATE it first");
    std::unique_ptr<mailstore::Mailbox> other;
    mailstore::Mailbox* dest = mailbox_ && mailbox_->name() == *name && !mailbox_->read_only() ? mailbox_.get() : nullptr;
    if (!dest) {
        auto box = store_->open(*name, false);
        if (!box) return (void)tagged("NO", "UNAVAILABLE", "cannot open the mailbox: " + box.message());
        other = std::move(*box);
        dest = other.get();
    }
    std::vector<uint32_t> uids;
    for (auto& m : messages) {
        auto writer = dest->append();
        if (!writer) return (void)tagged("NO", "SERVERBUG", "cannot store the message: " + writer.message());
        if (Status s = (*writer)->write(m.data); !s) return (void)tagged("NO", "", "cannot store the message: " + s.message());
        auto uid = (*writer)->commit(m.flags, m.date, m.zone);
        if (!uid) {
            bool quota = uid.message().find(mailstore::kOverQuota) != std::string::npos;
            return (void)tagged("NO", quota ? "OVERQUOTA" : "", "cannot store the message: " + uid.message());
        }
        uids.push_back(*uid);
    }
    auto st = dest->status();
    std::sort(uids.begin(), uids.end());
    if (state_ == State::Selected) refresh_and_report();
    tagged("OK", "APPENDUID " + std::to_string(st.uidvalidity) + " " + imap::format_sequence_set(uids),
           "APPEND completed");
}

}  // namespace tern::imapd
