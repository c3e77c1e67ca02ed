// Message commands of the selected state: FETCH (RFC 9051 6.4.5, BINARY
// RFC 3516, CONDSTORE/QRESYNC RFC 7162), STORE, COPY/MOVE (RFC 6851,
// UIDPLUS RFC 4315), EXPUNGE / UID EXPUNGE, IDLE (RFC 2177), and the
// untagged updates that tell the client what changed behind its back.
#include <event2/bufferevent.h>

#include <algorithm>
#include <charconv>

#include "imapd/server.hpp"
#include "imapd/session.hpp"
#include "lib/imap/fetch.hpp"
#include "lib/imap/response.hpp"
#include "lib/log/log.hpp"
#include "lib/mime/message.hpp"
#include "lib/mime/section.hpp"

namespace tern::imapd {

using imap::FetchItem;
using imap::Parser;

namespace {

// FETCH reads the cached data of this many messages at a time, so a
// "FETCH 1:* ENVELOPE" of a huge mailbox never copies all of it at once.
constexpr size_t kFetchBatch = 512;

struct Cached {
    uint32_t uid = 0;
    uint64_t crlf_size = 0;
    int64_t internal_date = 0;
    int zone = 0;
    std::string envelope, bodystructure, body, headers;
};

mime::SectionSpec to_spec(const imap::BodySection& s) {
    mime::SectionSpec spec;
    spec.path = s.part;
    using T = imap::BodySection::Text;
    switch (s.text) {
    case T::All: spec.text = mime::SectionText::Full; break;
    case T::Header: spec.text = mime::SectionText::Header; break;
    case T::HeaderFields: spec.text = mime::SectionText::HeaderFields; break;
    case T::HeaderFieldsNot: spec.text = mime::SectionText::HeaderFieldsNot; break;
    case T::Text: spec.text = mime::SectionText::Text; break;
    case T::Mime: spec.text = mime::SectionText::Mime; break;
    }
    spec.fields = s.fields;
    return spec;
}

bool cached_fields_only(const imap::BodySection& s) {
    if (s.text != imap::BodySection::Text::HeaderFields || !s.part.empty() || s.origin) return false;
    auto cached = mailstore::cached_header_fields();
    for (const auto& f : s.fields) {
        bool found = false;
        for (auto c : cached) found |= imap::iequals(c, f);
        if (!found) return false;
    }
    return true;
}

void append_number(std::string& out, uint64_t n) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, r.ptr);
}

std::string partial(std::string content, const imap::BodySection& s) {
    if (!s.origin) return content;
    if (*s.origin >= content.size()) return std::string();
    return content.substr(static_cast<size_t>(*s.origin), static_cast<size_t>(std::min<uint64_t>(s.length, content.size() - *s.origin)));
}

}  // namespace

std::string Session::flags_text(uint32_t uid, uint8_t system, uint64_t keywords) const {
    std::string out;
    append_flags(out, uid, system, keywords);
    return out;
}

void Session::append_flags(std::string& out, uint32_t uid, uint8_t system, uint64_t keywords) const {
    static const struct { uint8_t bit; std::string_view name; } names[] = {
        {mailstore::kSeen, "\\Seen"}, {mailstore::kAnswered, "\\Answered"}, {mailstore::kFlagged, "\\Flagged"},
        {mailstore::kDeleted, "\\Deleted"}, {mailstore::kDraft, "\\Draft"}};
    const size_t start = out.size();
    for (const auto& n : names) {
        if (!(system & n.bit)) continue;
        if (out.size() != start) out += ' ';
        out += n.name;
    }
    // RFC 3501 2.3.2; RFC 9051 dropped \Recent.
    if (!rev2_ && mailbox_->is_recent(uid)) {
        if (out.size() != start) out += ' ';
        out += "\\Recent";
    }
    if (!keywords) return;
    const auto& kw = mailbox_->keywords();
    for (size_t i = 0; i < kw.size() && i < 64; ++i) {
        if (!(keywords & (uint64_t{1} << i))) continue;
        if (out.size() != start) out += ' ';
        out += kw[i];
    }
}

std::optional<std::vector<uint32_t>> Session::uids_of(const imap::SequenceSet& set, bool uid) {
    auto view = mailbox_->view();
    std::vector<uint32_t> out;
    if (set.saved()) {
        for (uint32_t u : saved_)
            if (mailbox_->seq_of(u)) out.push_back(u);
        return out;
    }
    if (view.empty()) {
        // "1:*" of an empty mailbox names nothing (clients send it after
        // selecting one); a plain number names a message that is not there.
        bool all_star = true;
        for (const auto& r : set.ranges())
            all_star &= r.lo == imap::SequenceSet::kStar || r.hi == imap::SequenceSet::kStar;
        if (!uid && !all_star) {
            tagged("BAD", "", "message sequence number is beyond the last message: the mailbox is empty");
            return std::nullopt;
        }
        return out;
    }
    if (uid) {
        for (const auto& r : set.resolve(view.back().uid)) {
            auto it = std::lower_bound(view.begin(), view.end(), r.lo,
                                       [](const mailstore::ViewEntry& e, uint32_t u) { return e.uid < u; });
            for (; it != view.end() && it->uid <= r.hi; ++it) out.push_back(it->uid);
        }
        return out;
    }
    auto ranges = set.resolve(static_cast<uint32_t>(view.size()));
    for (const auto& r : ranges) {
        if (r.hi > view.size()) {
            tagged("BAD", "", "message sequence number " + std::to_string(r.hi) + " is beyond the last message (" +
                                  std::to_string(view.size()) + ")");
            return std::nullopt;
        }
        for (uint64_t s = r.lo; s <= r.hi; ++s) out.push_back(view[s - 1].uid);
    }
    return out;
}

void Session::watch_mailbox() {
    notify_ = event::Watch();
    if (!mailbox_ || mailbox_->notify_fd() < 0) return;
    notify_ = event::Watch(server_.base(), mailbox_->notify_fd(), EV_READ | EV_PERSIST, [this](short) {
        if (input_ == Input::Idle) {
            refresh_and_report();
        } else {
            // Reported at the next command boundary; stop watching until
            // then (the fd stays readable until refresh() drains it).
            notify_.del();
        }
    });
    notify_.add();
}

void Session::report_changes(const mailstore::Changes& c) {
    if (c.uidvalidity_changed) {
        bye_and_close("the mailbox was recreated (UIDVALIDITY changed); please reconnect");
        return;
    }
    if (!c.expunged_uids.empty()) {
        if (qresync_) {
            untagged("VANISHED " + imap::format_sequence_set(c.expunged_uids));
        } else {
            for (auto it = c.expunged_seqs.rbegin(); it != c.expunged_seqs.rend(); ++it)
                untagged(std::to_string(*it) + " EXPUNGE");
        }
    }
    if (c.keywords_changed) {
        std::string flags = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";
        for (const auto& k : mailbox_->keywords()) flags += " " + k;
        untagged("FLAGS (" + flags + ")");
        untagged("OK [PERMANENTFLAGS (" + flags + " \\*)] flags permitted");
    }
    if (!c.new_uids.empty()) {
        untagged(std::to_string(c.exists) + " EXISTS");
        if (!rev2_) untagged(std::to_string(mailbox_->recent_count()) + " RECENT");  // RFC 3501 7.3.2
    }
    for (uint32_t uid : c.flag_changes) {
        uint32_t seq = mailbox_->seq_of(uid);
        if (!seq) continue;
        const auto& e = mailbox_->view()[seq - 1];
        std::string line = std::to_string(seq) + " FETCH (UID " + std::to_string(uid) + " FLAGS (" +
                           flags_text(uid, e.flags, e.keywords) + ")";
        if (condstore_) line += " MODSEQ (" + std::to_string(e.modseq) + ")";
        untagged(line + ")");
    }
}

void Session::refresh_and_report() {
    if (!mailbox_) return;
    auto c = mailbox_->refresh();
    if (!c) {
        log::warning("user %s: refresh of %s: %s", user_.c_str(), mailbox_->name().c_str(), c.message().c_str());
    } else {
        report_changes(*c);
    }
    if (notify_ && !notify_.pending() && input_ != Input::Closing) notify_.add();
}

void Session::cmd_fetch(Parser& p, bool uid) {
    if (!p.sp()) return bad_syntax(p);
    auto set = imap::SequenceSet::parse(p);
    if (!set || !p.sp()) return bad_syntax(p);
    auto req = imap::parse_fetch(p);
    if (!req) return bad_syntax(p);
    if (req->vanished && !(uid && qresync_))
        return (void)tagged("BAD", "", "VANISHED needs UID FETCH and QRESYNC enabled");
    if (req->changed_since) condstore_ = true;  // RFC 7162 3.1: CHANGEDSINCE enables CONDSTORE
    auto uids = uids_of(*set, uid);
    if (!uids) return;
    if (req->changed_since) {
        std::vector<uint32_t> kept;
        for (uint32_t u : *uids)
            if (const auto* e = mailbox_->entry(u); e && e->modseq > *req->changed_since) kept.push_back(u);
        *uids = std::move(kept);
    }
    if (req->vanished) {
        bool complete = true;
        auto gone = mailbox_->vanished_since(*req->changed_since, complete);
        std::vector<uint32_t> in_set;
        if (gone) {
            auto view = mailbox_->view();
            uint32_t largest = view.empty() ? 0 : view.back().uid;
            for (uint32_t u : *gone)
                if (set->contains(u, largest) || set->saved()) in_set.push_back(u);
        }
        if (!in_set.empty()) untagged("VANISHED (EARLIER) " + imap::format_sequence_set(in_set));
    }
    // Reading a body section without PEEK sets \Seen (RFC 9051 6.4.5);
    // those messages get their new FLAGS in the same response.
    std::vector<uint32_t> newly_seen;
    if (req->sets_seen() && !mailbox_->read_only()) {
        std::vector<uint32_t> unseen;
        for (uint32_t u : *uids)
            if (const auto* e = mailbox_->entry(u); e && !(e->flags & mailstore::kSeen)) unseen.push_back(u);
        if (!unseen.empty()) {
            mailstore::Flags seen;
            seen.system = mailstore::kSeen;
            auto r = mailbox_->store_flags(unseen, mailstore::FlagOp::Add, seen);
            if (r) newly_seen = r->changed;
            std::sort(newly_seen.begin(), newly_seen.end());
        }
    }
    bool want_flags = req->has(FetchItem::Kind::Flags);
    bool want_modseq = req->has(FetchItem::Kind::ModSeq) || (condstore_ && req->changed_since);
    uint32_t fields = 0;
    bool need_body = false;
    for (const auto& item : req->items) {
        switch (item.kind) {
        case FetchItem::Kind::Rfc822Size: fields |= mailstore::kFieldSizes; break;
        case FetchItem::Kind::InternalDate: fields |= mailstore::kFieldInternalDate; break;
        case FetchItem::Kind::Envelope: fields |= mailstore::kFieldEnvelope; break;
        case FetchItem::Kind::BodyStructure: fields |= mailstore::kFieldBodyStructure; break;
        case FetchItem::Kind::Body: fields |= mailstore::kFieldBody; break;
        case FetchItem::Kind::BodySection:
            if (cached_fields_only(item.section)) fields |= mailstore::kFieldHeaders;
            else need_body = true;
            break;
        case FetchItem::Kind::Rfc822: case FetchItem::Kind::Rfc822Header: case FetchItem::Kind::Rfc822Text:
        case FetchItem::Kind::Binary: case FetchItem::Kind::BinarySize:
            need_body = true;
            break;
        default: break;
        }
    }
    const bool want_uid = req->has(FetchItem::Kind::Uid);
    // Sequence number of a UID: FETCH asks in ascending order, so the entry
    // after the previous one is tried before a binary search.
    size_t next_seq = 0;
    auto locate = [&](uint32_t u) -> uint32_t {
        auto view = mailbox_->view();
        if (next_seq < view.size() && view[next_seq].uid == u) return static_cast<uint32_t>(++next_seq);
        uint32_t seq = mailbox_->seq_of(u);
        if (seq) next_seq = seq;
        return seq;
    };
    std::string out;
    bool failed = false;
    for (size_t start = 0; start < uids->size() && !failed; start += kFetchBatch) {
        std::span<const uint32_t> batch(uids->data() + start, std::min(kFetchBatch, uids->size() - start));
        std::vector<Cached> cached;
        cached.reserve(batch.size());
        if (fields) {
            Status s = mailbox_->for_each(batch, fields, [&](const mailstore::MessageData& md) {
                Cached c;
                c.uid = md.uid;
                c.crlf_size = md.crlf_size;
                c.internal_date = md.internal_date;
                c.zone = md.internal_date_offset;
                if (fields & mailstore::kFieldEnvelope) c.envelope = md.envelope;
                if (fields & mailstore::kFieldBodyStructure) c.bodystructure = md.bodystructure;
                if (fields & mailstore::kFieldBody) c.body = md.body;
                if (fields & mailstore::kFieldHeaders) c.headers = md.headers;
                cached.push_back(std::move(c));
            });
            if (!s) {
                log::warning("user %s: FETCH: %s", user_.c_str(), s.message().c_str());
                failed = true;
                break;
            }
        } else {
            for (uint32_t u : batch) cached.push_back(Cached{u, 0, 0, 0, {}, {}, {}, {}});
        }
        for (const Cached& c : cached) {
            uint32_t seq = locate(c.uid);
            if (!seq) continue;
            const mailstore::ViewEntry* e = &mailbox_->view()[seq - 1];
            std::unique_ptr<mailstore::MessageBody> body;
            std::string_view data;
            std::optional<mime::Part> root;
            if (need_body) {
                auto b = mailbox_->open_body(c.uid);
                if (!b) {
                    // Expunged behind our back (another process): skip it,
                    // the EXPUNGE comes with the next refresh.
                    log::info("user %s: FETCH uid %u: %s", user_.c_str(), c.uid, b.message().c_str());
                    continue;
                }
                body = std::move(*b);
                data = body->bytes();
                root = mime::parse_message(data);
            }
            // The line is built straight into `out`; an error drops the partial line.
            const size_t line_start = out.size();
            out += "* ";
            append_number(out, seq);
            out += " FETCH (";
            const size_t items_start = out.size();
            std::string& items = out;
            auto add = [&](std::string_view name) {
                if (items.size() != items_start) items += ' ';
                items.append(name);
                items += ' ';
            };
            if (uid || want_uid) add("UID"), append_number(items, c.uid);
            bool seen_now = !newly_seen.empty() && std::binary_search(newly_seen.begin(), newly_seen.end(), c.uid);
            if (want_flags || seen_now) {
                add("FLAGS");
                items += '(';
                append_flags(items, c.uid, e->flags, e->keywords);
                items += ')';
            }
            if (want_modseq) {
                add("MODSEQ");
                items += '(';
                append_number(items, e->modseq);
                items += ')';
            }
            for (const auto& item : req->items) {
                switch (item.kind) {
                case FetchItem::Kind::Uid: case FetchItem::Kind::Flags: case FetchItem::Kind::ModSeq: break;
                case FetchItem::Kind::Rfc822Size: add("RFC822.SIZE"); items += std::to_string(c.crlf_size); break;
                case FetchItem::Kind::InternalDate:
                    add("INTERNALDATE");
                    items += "\"" + imap::format_date_time(c.internal_date, c.zone) + "\"";
                    break;
                case FetchItem::Kind::Envelope: add("ENVELOPE"); items += c.envelope; break;
                case FetchItem::Kind::BodyStructure: add("BODYSTRUCTURE"); items += c.bodystructure; break;
                case FetchItem::Kind::Body: add("BODY"); items += c.body; break;
                case FetchItem::Kind::Rfc822: case FetchItem::Kind::Rfc822Header: case FetchItem::Kind::Rfc822Text: {
                    mime::SectionSpec spec;
                    spec.text = item.kind == FetchItem::Kind::Rfc822 ? mime::SectionText::Full
                              : item.kind == FetchItem::Kind::Rfc822Header ? mime::SectionText::Header
                                                                            : mime::SectionText::Text;
                    auto range = mime::resolve_section(*root, data, spec);
                    std::string content;
                    if (range) mime::append_crlf(content, data.substr(range->begin, range->end - range->begin));
                    add(item.response_name());
                    imap::append_literal(items, content);
                    break;
                }
                case FetchItem::Kind::BodySection: {
                    std::string content;
                    if (!need_body || (!root && cached_fields_only(item.section))) {
                        content = mime::filter_header(c.headers, item.section.fields, false);
                    } else {
                        auto range = mime::resolve_section(*root, data, to_spec(item.section));
                        if (range) {
                            if (range->filtered) content = partial(*range->filtered, item.section);
                            else if (item.section.origin)
                                content = mime::crlf_slice(data.substr(range->begin, range->end - range->begin),
                                                           *item.section.origin, item.section.length);
                            else mime::append_crlf(content, data.substr(range->begin, range->end - range->begin));
                        }
                    }
                    add(item.response_name());
                    imap::append_literal(items, content);
                    break;
                }
                case FetchItem::Kind::Binary: case FetchItem::Kind::BinarySize: {
                    mime::SectionSpec spec;
                    spec.path = item.section.part;
                    auto range = mime::resolve_section(*root, data, spec);
                    if (!range || (range->part && range->part->is_multipart() && !spec.path.empty())) {
                        out.resize(line_start);
                        send(out);
                        tagged("NO", "", "BINARY: no such leaf part");
                        return;
                    }
                    std::string crlf;
                    mime::append_crlf(crlf, data.substr(range->begin, range->end - range->begin));
                    std::string decoded;
                    if (spec.path.empty() || !range->part) {
                        decoded = std::move(crlf);
                    } else {
                        auto d = mime::decode_transfer(crlf, range->part->encoding);
                        if (!d) {
                            out.resize(line_start);
                            send(out);
                            tagged("NO", "UNKNOWN-CTE", "cannot decode the part: " + d.message());
                            return;
                        }
                        decoded = std::move(*d);
                    }
                    add(item.response_name());
                    if (item.kind == FetchItem::Kind::BinarySize) {
                        items += std::to_string(decoded.size());
                    } else {
                        std::string content = partial(std::move(decoded), item.section);
                        imap::append_literal(items, content, content.find('\0') != std::string::npos);
                    }
                    break;
                }
                }
            }
            out += ")\r\n";
        }
        send(out);
        out.clear();
    }
    if (failed) return (void)tagged("NO", "SERVERBUG", "cannot read the messages, try again");
    if (uid) refresh_and_report();
    tagged("OK", "", std::string(uid ? "UID " : "") + "FETCH completed");
}

void Session::cmd_store(Parser& p, bool uid) {
    if (!p.sp()) return bad_syntax(p);
    auto set = imap::SequenceSet::parse(p);
    if (!set || !p.sp()) return bad_syntax(p);
    std::optional<uint64_t> unchanged_since;
    if (p.take('(')) {
        auto w = p.keyword();
        if (!w || !imap::iequals(*w, "UNCHANGEDSINCE") || !p.sp()) return bad_syntax(p);
        auto n = p.number64();
        if (!n || !p.expect(')') || !p.sp()) return bad_syntax(p);
        unchanged_since = *n;
        condstore_ = true;
    }
    mailstore::FlagOp op = mailstore::FlagOp::Replace;
    if (p.take('+')) op = mailstore::FlagOp::Add;
    else if (p.take('-')) op = mailstore::FlagOp::Remove;
    auto w = p.keyword();
    if (!w || !p.sp()) return bad_syntax(p);
    std::string item = imap::upper(*w);
    bool silent = item == "FLAGS.SILENT";
    if (!silent && item != "FLAGS") return (void)tagged("BAD", "", "expected FLAGS or FLAGS.SILENT");
    std::vector<std::string> list;
    if (p.peek('(')) {
        auto l = p.flag_list();
        if (!l) return bad_syntax(p);
        list = std::move(*l);
    } else {
        while (true) {
            auto f = p.flag();
            if (!f) return bad_syntax(p);
            list.push_back(std::move(*f));
            if (p.at_end()) break;
            if (!p.sp()) return bad_syntax(p);
        }
    }
    if (!p.end()) return bad_syntax(p);
    mailstore::Flags flags;
    std::string error;
    if (!to_store_flags(list, flags, error)) return (void)tagged("BAD", "", error);
    if (mailbox_->read_only()) return (void)tagged("NO", "READ-ONLY", "the mailbox is read-only (EXAMINE)");
    auto uids = uids_of(*set, uid);
    if (!uids) return;
    auto r = mailbox_->store_flags(*uids, op, flags, unchanged_since);
    if (!r) {
        bool full = r.message().find("keyword") != std::string::npos;
        return (void)tagged("NO", full ? "LIMIT" : "SERVERBUG", "cannot change flags: " + r.message());
    }
    std::vector<uint32_t> modified = r->modified;
    std::sort(modified.begin(), modified.end());
    for (uint32_t u : *uids) {
        if (std::binary_search(modified.begin(), modified.end(), u)) continue;
        uint32_t seq = mailbox_->seq_of(u);
        const auto* e = mailbox_->entry(u);
        if (!seq || !e) continue;
        std::string line = std::to_string(seq) + " FETCH (";
        if (uid || silent) line += "UID " + std::to_string(u) + " ";
        if (!silent) line += "FLAGS (" + flags_text(u, e->flags, e->keywords) + ")";
        // RFC 7162 3.1.3: with CONDSTORE the new mod-sequence is reported, even for .SILENT.
        if (condstore_) line += std::string(silent ? "" : " ") + "MODSEQ (" + std::to_string(e->modseq) + ")";
        else if (silent) continue;
        untagged(line + ")");
    }
    if (uid) refresh_and_report();
    std::string code;
    if (!modified.empty()) {
        std::vector<uint32_t> ids;
        for (uint32_t u : modified) ids.push_back(uid ? u : mailbox_->seq_of(u));
        std::sort(ids.begin(), ids.end());
        code = "MODIFIED " + imap::format_sequence_set(ids);
    }
    tagged("OK", code, std::string(uid ? "UID " : "") + "STORE completed");
}

void Session::cmd_copy(Parser& p, bool uid, bool move) {
    if (!p.sp()) return bad_syntax(p);
    auto set = imap::SequenceSet::parse(p);
    if (!set || !p.sp()) return bad_syntax(p);
    auto dest = mailbox_arg(p);
    if (!dest) return;
    if (!p.end()) return bad_syntax(p);
    if (move && mailbox_->read_only()) return (void)tagged("NO", "READ-ONLY", "the mailbox is read-only (EXAMINE)");
    auto exists = store_->exists(*dest);
    if (!exists || !*exists) return (void)tagged("NO", "TRYCREATE", "no such mailbox; CREATE it first");
    auto uids = uids_of(*set, uid);
    if (!uids) return;
    const char* verb = move ? "MOVE" : "COPY";
    if (uids->empty()) return (void)tagged("OK", "", std::string(verb) + " completed: no messages");
    mailstore::Changes expunged;
    auto r = move ? mailbox_->move(*uids, *dest, expunged) : mailbox_->copy(*uids, *dest);
    if (!r) {
        bool quota = r.message().find(mailstore::kOverQuota) != std::string::npos;
        return (void)tagged("NO", quota ? "OVERQUOTA" : "SERVERBUG", std::string(verb) + " failed: " + r.message());
    }
    std::string code;
    if (!r->source_uids.empty())
        code = "COPYUID " + std::to_string(r->dest_uidvalidity) + " " + imap::format_sequence_set(r->source_uids) + " " +
               imap::format_sequence_set(r->dest_uids);
    if (move) {
        // RFC 6851 4.3: COPYUID goes in an untagged OK before the expunges.
        if (!code.empty()) untagged("OK [" + code + "] moved");
        report_changes(expunged);
        refresh_and_report();
        return (void)tagged("OK", "", std::string(uid ? "UID " : "") + "MOVE completed");
    }
    refresh_and_report();
    tagged("OK", code, std::string(uid ? "UID " : "") + "COPY completed");
}

void Session::cmd_expunge(Parser& p, bool uid) {
    std::optional<std::vector<uint32_t>> only;
    if (uid) {
        if (!p.sp()) return bad_syntax(p);
        auto set = imap::SequenceSet::parse(p);
        if (!set) return bad_syntax(p);
        only = uids_of(*set, true);
        if (!only) return;
    }
    if (!p.end()) return bad_syntax(p);
    if (mailbox_->read_only()) return (void)tagged("NO", "READ-ONLY", "the mailbox is read-only (EXAMINE)");
    auto r = only ? mailbox_->expunge(std::span<const uint32_t>(*only)) : mailbox_->expunge();
    if (!r) return (void)tagged("NO", "SERVERBUG", "EXPUNGE failed: " + r.message());
    report_changes(*r);
    refresh_and_report();
    tagged("OK", "", std::string(uid ? "UID " : "") + "EXPUNGE completed");
}

void Session::cmd_idle(Parser& p) {
    if (!p.end()) return bad_syntax(p);
    if (state_ == State::Selected) {
        // Notices are wanted from now on (watching a big folder is not free,
        // so SELECT does not start it); the refresh after it misses nothing.
        if (!notify_) watch_mailbox();
        refresh_and_report();
    }
    send("+ idling\r\n");
    input_ = Input::Idle;
    reader_.expect_raw_line();
}

void Session::idle_line(std::string_view line) {
    input_ = Input::Commands;
    if (!imap::iequals(line, "DONE")) return (void)tagged("BAD", "", "expected DONE to end IDLE");
    if (state_ == State::Selected) refresh_and_report();
    tagged("OK", "", "IDLE terminated");
}

}  // namespace tern::imapd
