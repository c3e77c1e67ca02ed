// SEARCH (RFC 9051 6.4.4, ESEARCH RFC 4731, SEARCHRES RFC 5182, CONDSTORE
// MODSEQ RFC 7162), SORT and THREAD (RFC 5256, algorithms in lib/imap/thread): the key tree from
// lib/imap/search evaluated against the selected mailbox.  Flags, UIDs and
// mod-sequences come from the view; sizes, dates and the common header
// fields from the store's index; only BODY/TEXT and uncached header fields
// open the message files.
#include <algorithm>
#include <cctype>
#include <map>

#include "imapd/server.hpp"
#include "imapd/session.hpp"
#include "lib/imap/response.hpp"
#include "lib/imap/thread.hpp"
#include "lib/log/log.hpp"
#include "lib/mime/header.hpp"
#include "lib/mime/message.hpp"
#include "lib/mime/search.hpp"

namespace tern::imapd {

using imap::Parser;
using imap::SearchKey;
using Kind = SearchKey::Kind;

namespace {

constexpr size_t kBatch = 512;

// RFC 5322 3.3 date (obsolete forms and zone names tolerated): the UTC
// instant and the zone offset in minutes; nullopt when unparsable.
std::optional<std::pair<int64_t, int>> parse_message_date(std::string_view s) {
    static const char* const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                         "jul", "aug", "sep", "oct", "nov", "dec"};
    size_t i = 0;
    auto skip_ws = [&] { while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) ++i; };
    auto number = [&](int& out) {
        size_t start = i;
        out = 0;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && i - start < 9) out = out * 10 + (s[i++] - '0');
        return i > start;
    };
    skip_ws();
    if (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) {  // day name
        while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
        skip_ws();
    }
    int day, year, hour, minute, second = 0, month = 0;
    if (!number(day)) return std::nullopt;
    skip_ws();
    if (i + 3 > s.size()) return std::nullopt;
    for (int m = 0; m < 12; ++m)
        if (mime::iequals(s.substr(i, 3), months[m])) month = m + 1;
    if (!month) return std::nullopt;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    skip_ws();
    if (!number(year)) return std::nullopt;
    if (year < 50) year += 2000;
    else if (year < 1000) year += 1900;
    skip_ws();
    if (!number(hour) || i >= s.size() || s[i] != ':') return std::nullopt;
    ++i;
    if (!number(minute)) return std::nullopt;
    if (i < s.size() && s[i] == ':') {
        ++i;
        if (!number(second)) return std::nullopt;
    }
    skip_ws();
    int zone = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        bool neg = s[i] == '-';
        ++i;
        int z;
        if (number(z)) zone = (z / 100 * 60 + z % 100) * (neg ? -1 : 1);
    } else {
        static const struct { const char* name; int minutes; } zones[] = {
            {"EDT", -240}, {"EST", -300}, {"CDT", -300}, {"CST", -360}, {"MDT", -360},
            {"MST", -420}, {"PDT", -420}, {"PST", -480}};
        for (const auto& z : zones)
            if (s.size() - i >= 3 && mime::iequals(s.substr(i, 3), z.name)) zone = z.minutes;
    }
    if (day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
    struct tm tm = {};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    int64_t local = timegm(&tm);
    return std::make_pair(local - zone * 60, zone);
}

// The day (UTC midnight of the local date) of an instant in its own zone:
// RFC 9051 date comparisons disregard time and time zone.
int64_t day_of(int64_t utc, int zone) {
    int64_t local = utc + zone * 60;
    return (local >= 0 ? local / 86400 : (local - 86399) / 86400) * 86400;
}

bool cached(std::string_view field) {
    for (auto c : mailstore::cached_header_fields())
        if (mime::iequals(c, field)) return true;
    return false;
}

struct Needs {
    uint32_t fields = 0;
    bool body = false;
};

void analyse(const SearchKey& k, Needs& n) {
    switch (k.kind) {
    case Kind::Larger: case Kind::Smaller: n.fields |= mailstore::kFieldSizes; break;
    case Kind::Before: case Kind::On: case Kind::Since: n.fields |= mailstore::kFieldInternalDate; break;
    case Kind::SentBefore: case Kind::SentOn: case Kind::SentSince: n.fields |= mailstore::kFieldHeaders; break;
    case Kind::Header:
        if (cached(k.field)) n.fields |= mailstore::kFieldHeaders;
        else n.body = true;
        break;
    case Kind::Body: case Kind::Text: n.body = true; break;
    default: break;
    }
    for (const auto& c : k.children) analyse(c, n);
}

// One message as the evaluator sees it.
struct Candidate {
    uint32_t uid = 0;
    uint32_t seq = 0;
    const mailstore::ViewEntry* entry = nullptr;
    uint64_t size = 0;
    int64_t date = 0;
    int zone = 0;
    std::string headers;
    std::unique_ptr<mailstore::MessageBody> body;
    std::optional<mime::Part> root;
};

class Evaluator {
public:
    // recent: an IMAP4rev1 session (RFC 9051 has no \Recent: RECENT and NEW match nothing).
    Evaluator(mailstore::Mailbox& box, const std::vector<uint32_t>& saved, bool recent)
        : box_(box), saved_(saved), recent_(recent) {
        auto v = box.view();
        count_ = static_cast<uint32_t>(v.size());
        max_uid_ = v.empty() ? 0 : v.back().uid;
    }

    bool match(const SearchKey& k, Candidate& m) {
        switch (k.kind) {
        case Kind::All: return true;
        case Kind::And:
            for (const auto& c : k.children)
                if (!match(c, m)) return false;
            return true;
        case Kind::Or: return match(k.children[0], m) || match(k.children[1], m);
        case Kind::Not: return !match(k.children[0], m);
        case Kind::Sequence:
            if (k.set.saved()) return std::binary_search(saved_.begin(), saved_.end(), m.uid);
            return k.set.contains(m.seq, count_);
        case Kind::Uid:
            if (k.set.saved()) return std::binary_search(saved_.begin(), saved_.end(), m.uid);
            return k.set.contains(m.uid, max_uid_);
        case Kind::Flag: return has_flag(k.field, m);
        case Kind::NoFlag: return !has_flag(k.field, m);
        case Kind::Recent: return is_recent(m);
        case Kind::New: return is_recent(m) && !(m.entry->flags & mailstore::kSeen);  // RFC 3501 6.4.4
        case Kind::Old: return !is_recent(m);
        case Kind::Larger: return m.size > k.number;
        case Kind::Smaller: return m.size < k.number;
        case Kind::Before: return day_of(m.date, m.zone) < k.date;
        case Kind::On: return day_of(m.date, m.zone) == k.date;
        case Kind::Since: return day_of(m.date, m.zone) >= k.date;
        case Kind::SentBefore: case Kind::SentOn: case Kind::SentSince: {
            auto d = sent_date(m);
            if (!d) return false;
            int64_t day = day_of(d->first, d->second);
            if (k.kind == Kind::SentBefore) return day < k.date;
            if (k.kind == Kind::SentOn) return day == k.date;
            return day >= k.date;
        }
        case Kind::Header: {
            const auto& matcher = matcher_for(k);
            if (is_cached(k)) return mime::header_block_contains(m.headers, k.field, matcher);
            return load(m) && mime::header_contains(*m.root, m.body->bytes(), k.field, matcher);
        }
        case Kind::Body: return load(m) && mime::body_contains(*m.root, m.body->bytes(), matcher_for(k));
        case Kind::Text: return load(m) && mime::text_contains(*m.root, m.body->bytes(), matcher_for(k));
        case Kind::ModSeq: return m.entry->modseq >= k.number;
        }
        return false;
    }

private:
    bool is_recent(const Candidate& m) const { return recent_ && box_.is_recent(m.uid); }

    bool has_flag(const std::string& name, const Candidate& m) {
        static const struct { const char* name; uint8_t bit; } system[] = {
            {"\\Seen", mailstore::kSeen}, {"\\Answered", mailstore::kAnswered}, {"\\Flagged", mailstore::kFlagged},
            {"\\Deleted", mailstore::kDeleted}, {"\\Draft", mailstore::kDraft}};
        for (const auto& s : system)
            if (imap::iequals(name, s.name)) return m.entry->flags & s.bit;
        const auto& kw = box_.keywords();
        for (size_t i = 0; i < kw.size() && i < 64; ++i)
            if (imap::iequals(kw[i], name)) return m.entry->keywords & (uint64_t{1} << i);
        return false;
    }

    std::optional<std::pair<int64_t, int>> sent_date(const Candidate& m) {
        auto block = mime::parse_header(m.headers);
        auto date = block.get("Date");
        if (!date) return std::nullopt;
        return parse_message_date(mime::unfold(*date));
    }

    bool is_cached(const SearchKey& k) {
        auto it = cached_.find(&k);
        if (it == cached_.end()) it = cached_.emplace(&k, cached(k.field)).first;
        return it->second;
    }

    const mime::TextMatcher& matcher_for(const SearchKey& k) {
        auto it = matchers_.find(&k);
        if (it == matchers_.end()) it = matchers_.emplace(&k, mime::TextMatcher(k.value)).first;
        return it->second;
    }

    bool load(Candidate& m) {
        if (m.root) return true;
        if (m.body) return false;  // tried and failed
        auto b = box_.open_body(m.uid);
        if (!b) return false;
        m.body = std::move(*b);
        m.root = mime::parse_message(m.body->bytes());
        return true;
    }

    mailstore::Mailbox& box_;
    const std::vector<uint32_t>& saved_;
    bool recent_;
    uint32_t count_ = 0, max_uid_ = 0;
    std::map<const SearchKey*, mime::TextMatcher> matchers_;
    std::map<const SearchKey*, bool> cached_;  // whether the key's field is among the cached header lines
};

// Sort key values of one message (RFC 5256 3).
struct SortRow {
    uint32_t uid = 0, seq = 0;
    int64_t arrival = 0, date = 0;
    uint64_t size = 0;
    std::string subject, from, to, cc;
};

std::string first_mailbox(std::string_view raw) {
    for (const auto& a : mime::parse_address_list(mime::unfold(raw)))
        if (a.mailbox && !a.group_start) return mime::fold_case(*a.mailbox);
    return "";
}

}  // namespace

bool Session::check_charset(const std::string& charset) {
    if (charset.empty() || charset == "UTF-8" || charset == "US-ASCII") return true;
    tagged("NO", "BADCHARSET (UTF-8 US-ASCII)", "unsupported charset " + charset);
    return false;
}

std::optional<std::vector<uint32_t>> Session::evaluate(const SearchKey& key) {
    Needs needs;
    analyse(key, needs);
    Evaluator ev(*mailbox_, saved_, !rev2_);
    auto view = mailbox_->view();
    std::vector<uint32_t> all;
    all.reserve(view.size());
    for (const auto& e : view) all.push_back(e.uid);
    std::vector<uint32_t> out;
    for (size_t start = 0; start < all.size(); start += kBatch) {
        std::span<const uint32_t> batch(all.data() + start, std::min(kBatch, all.size() - start));
        std::vector<Candidate> cands;
        cands.reserve(batch.size());
        if (needs.fields) {
            Status s = mailbox_->for_each(batch, needs.fields, [&](const mailstore::MessageData& md) {
                Candidate c;
                c.uid = md.uid;
                c.size = md.crlf_size;
                c.date = md.internal_date;
                c.zone = md.internal_date_offset;
                c.headers = md.headers;
                cands.push_back(std::move(c));
            });
            if (!s) {
                log::warning("user %s: SEARCH: %s", user_.c_str(), s.message().c_str());
                return std::nullopt;
            }
        } else {
            for (uint32_t u : batch) {
                Candidate c;
                c.uid = u;
                cands.push_back(std::move(c));
            }
        }
        size_t next = 0;  // candidates come in ascending UID order: try the next entry first
        for (auto& c : cands) {
            c.seq = next < view.size() && view[next].uid == c.uid ? static_cast<uint32_t>(next + 1)
                                                                   : mailbox_->seq_of(c.uid);
            if (!c.seq) continue;
            next = c.seq;
            c.entry = &view[c.seq - 1];
            if (ev.match(key, c)) out.push_back(c.uid);
        }
    }
    return out;
}

void Session::cmd_search(Parser& p, bool uid) {
    if (!p.sp()) return bad_syntax(p);
    auto req = imap::parse_search(p);
    if (!req || !p.end()) return bad_syntax(p);
    if (!check_charset(req->charset)) return;
    auto found = evaluate(req->key);
    if (!found) return (void)tagged("NO", "SERVERBUG", "search failed, try again");
    std::vector<uint32_t> ids;
    for (uint32_t u : *found) ids.push_back(uid ? u : mailbox_->seq_of(u));
    std::function<bool(const SearchKey&)> uses_modseq = [&](const SearchKey& k) {
        if (k.kind == Kind::ModSeq) return true;
        for (const auto& c : k.children)
            if (uses_modseq(c)) return true;
        return false;
    };
    uint64_t highest = 0;
    if (uses_modseq(req->key)) {
        condstore_ = true;
        for (uint32_t u : *found)
            if (const auto* e = mailbox_->entry(u)) highest = std::max(highest, e->modseq);
    }
    const auto& r = req->ret;
    if (r.save) {
        // RFC 5182 2.1: with MIN or MAX alone only those are saved.
        if ((r.min || r.max) && !r.all && !r.count && !found->empty()) {
            saved_.clear();
            if (r.min) saved_.push_back(found->front());
            if (r.max && (!r.min || found->back() != found->front())) saved_.push_back(found->back());
        } else {
            saved_ = *found;
        }
    }
    bool esearch = r.given || rev2_;
    if (esearch) {
        bool only_save = r.given && r.save && !r.min && !r.max && !r.all && !r.count;
        if (!only_save) {
            std::string line = "ESEARCH (TAG ";
            imap::append_string(line, tag_);
            line += ")";
            if (uid) line += " UID";
            bool all = r.given ? r.all : true;
            if (!ids.empty()) {
                if (r.min) line += " MIN " + std::to_string(ids.front());
                if (r.max) line += " MAX " + std::to_string(ids.back());
                if (all) line += " ALL " + imap::format_sequence_set(ids);
            }
            if (r.count) line += " COUNT " + std::to_string(ids.size());
            if (highest && !ids.empty()) line += " MODSEQ " + std::to_string(highest);
            untagged(line);
        }
    } else {
        std::string line = "SEARCH";
        for (uint32_t id : ids) line += " " + std::to_string(id);
        if (highest && !ids.empty()) line += " (MODSEQ " + std::to_string(highest) + ")";
        untagged(line);
    }
    if (uid) refresh_and_report();
    tagged("OK", "", std::string(uid ? "UID " : "") + "SEARCH completed");
}

void Session::cmd_sort(Parser& p, bool uid) {
    if (!p.sp()) return bad_syntax(p);
    auto req = imap::parse_sort(p);
    if (!req || !p.end()) return bad_syntax(p);
    if (req->ret.given) return (void)tagged("BAD", "", "SORT RETURN (ESORT) is not supported");
    for (const auto& k : req->keys)
        if (k.field == imap::SortKey::Field::DisplayFrom || k.field == imap::SortKey::Field::DisplayTo)
            return (void)tagged("BAD", "", "DISPLAYFROM/DISPLAYTO sorting is not supported");
    if (!check_charset(req->charset)) return;
    auto found = evaluate(req->key);
    if (!found) return (void)tagged("NO", "SERVERBUG", "sort failed, try again");
    std::vector<SortRow> rows;
    rows.reserve(found->size());
    for (size_t start = 0; start < found->size(); start += kBatch) {
        std::span<const uint32_t> batch(found->data() + start, std::min(kBatch, found->size() - start));
        Status s = mailbox_->for_each(batch, mailstore::kFieldSizes | mailstore::kFieldInternalDate | mailstore::kFieldHeaders,
                                      [&](const mailstore::MessageData& md) {
            SortRow row;
            row.uid = md.uid;
            row.seq = mailbox_->seq_of(md.uid);
            row.arrival = md.internal_date;
            row.size = md.crlf_size;
            auto block = mime::parse_header(md.headers);
            auto date = block.get("Date");
            auto parsed = date ? parse_message_date(mime::unfold(*date)) : std::nullopt;
            row.date = parsed ? parsed->first : md.internal_date;  // RFC 5256: no Date -> internal date
            if (auto v = block.get("Subject")) row.subject = imap::base_subject(*v);
            if (auto v = block.get("From")) row.from = first_mailbox(*v);
            if (auto v = block.get("To")) row.to = first_mailbox(*v);
            if (auto v = block.get("Cc")) row.cc = first_mailbox(*v);
            rows.push_back(std::move(row));
        });
        if (!s) return (void)tagged("NO", "SERVERBUG", "sort failed, try again");
    }
    using F = imap::SortKey::Field;
    std::stable_sort(rows.begin(), rows.end(), [&](const SortRow& a, const SortRow& b) {
        for (const auto& k : req->keys) {
            int c = 0;
            switch (k.field) {
            case F::Arrival: c = a.arrival < b.arrival ? -1 : a.arrival > b.arrival; break;
            case F::Date: c = a.date < b.date ? -1 : a.date > b.date; break;
            case F::Size: c = a.size < b.size ? -1 : a.size > b.size; break;
            case F::Subject: c = a.subject.compare(b.subject); break;
            case F::From: c = a.from.compare(b.from); break;
            case F::To: c = a.to.compare(b.to); break;
            case F::Cc: c = a.cc.compare(b.cc); break;
            default: break;
            }
            if (k.reverse) c = -c;
            if (c) return c < 0;
        }
        return a.seq < b.seq;  // RFC 5256 3: ties by sequence number
    });
    std::string line = "SORT";
    for (const auto& r : rows) line += " " + std::to_string(uid ? r.uid : r.seq);
    untagged(line);
    if (uid) refresh_and_report();
    tagged("OK", "", std::string(uid ? "UID " : "") + "SORT completed");
}

void Session::cmd_thread(Parser& p, bool uid) {
    if (!p.sp()) return bad_syntax(p);
    auto req = imap::parse_thread(p);
    if (!req || !p.end()) return bad_syntax(p);
    if (!check_charset(req->charset)) return;
    auto found = evaluate(req->key);
    if (!found) return (void)tagged("NO", "SERVERBUG", "thread failed, try again");
    std::vector<imap::ThreadMessage> messages;
    messages.reserve(found->size());
    for (size_t start = 0; start < found->size(); start += kBatch) {
        std::span<const uint32_t> batch(found->data() + start, std::min(kBatch, found->size() - start));
        Status s = mailbox_->for_each(batch, mailstore::kFieldInternalDate | mailstore::kFieldHeaders,
                                      [&](const mailstore::MessageData& md) {
            imap::ThreadMessage m;
            m.seq = mailbox_->seq_of(md.uid);
            m.id = uid ? md.uid : m.seq;
            auto block = mime::parse_header(md.headers);
            auto date = block.get("Date");
            auto parsed = date ? parse_message_date(mime::unfold(*date)) : std::nullopt;
            m.date = parsed ? parsed->first : md.internal_date;
            if (auto v = block.get("Subject")) m.subject = std::string(*v);
            if (auto v = block.get("Message-ID")) m.message_id = std::string(*v);
            if (auto v = block.get("References")) m.references = std::string(*v);
            if (auto v = block.get("In-Reply-To")) m.in_reply_to = std::string(*v);
            messages.push_back(std::move(m));
        });
        if (!s) return (void)tagged("NO", "SERVERBUG", "thread failed, try again");
    }
    bool references = req->algorithm == imap::ThreadRequest::Algorithm::References;
    untagged("THREAD " + (references ? imap::thread_references(messages) : imap::thread_orderedsubject(messages)));
    if (uid) refresh_and_report();
    tagged("OK", "", std::string(uid ? "UID " : "") + "THREAD completed");
}

}  // namespace tern::imapd
