// SEARCH / SORT / THREAD request parsing (see search.hpp).
#include "lib/imap/search.hpp"

namespace tern::imap {

namespace {

using Kind = SearchKey::Kind;

bool parse_key(Parser& p, SearchKey& key, int depth);

bool parse_keys_until(Parser& p, SearchKey& and_key, int depth, bool closing_paren) {
    and_key.kind = Kind::And;
    while (true) {
        SearchKey k;
        if (!parse_key(p, k, depth + 1)) return false;
        and_key.children.push_back(std::move(k));
        if (closing_paren && p.take(')')) return true;
        if (!closing_paren && p.at_end()) return p.ok();
        if (!p.take(' ')) return p.fail(closing_paren ? "a space or \")\"" : "a space");
    }
}

bool string_arg(Parser& p, std::string& out) {
    if (!p.sp()) return false;
    auto s = p.astring();
    if (!s) return false;
    out = std::move(*s);
    return true;
}

bool date_arg(Parser& p, SearchKey& key, Kind kind) {
    key.kind = kind;
    if (!p.sp()) return false;
    auto d = p.date();
    if (!d) return false;
    key.date = *d;
    return true;
}

bool parse_key(Parser& p, SearchKey& key, int depth) {
    if (depth > kMaxSearchDepth) return p.fail("search keys nested less deeply");
    if (!p.ok()) return false;
    if (p.take('(')) return parse_keys_until(p, key, depth, true);
    if (p.peek('*') || p.peek('$') || (!p.at_end() && p.rest()[0] >= '0' && p.rest()[0] <= '9')) {
        auto set = SequenceSet::parse(p);
        if (!set) return false;
        key.kind = Kind::Sequence;
        key.set = std::move(*set);
        return true;
    }
    auto word = p.keyword();
    if (!word) return p.fail("a search key");
    std::string w = upper(*word);
    static const struct { const char* name; Kind kind; const char* flag; } flags[] = {
        {"ANSWERED", Kind::Flag, "\\Answered"},   {"DELETED", Kind::Flag, "\\Deleted"},
        {"DRAFT", Kind::Flag, "\\Draft"},         {"FLAGGED", Kind::Flag, "\\Flagged"},
        {"SEEN", Kind::Flag, "\\Seen"},           {"UNANSWERED", Kind::NoFlag, "\\Answered"},
        {"UNDELETED", Kind::NoFlag, "\\Deleted"}, {"UNDRAFT", Kind::NoFlag, "\\Draft"},
        {"UNFLAGGED", Kind::NoFlag, "\\Flagged"}, {"UNSEEN", Kind::NoFlag, "\\Seen"},
    };
    for (const auto& f : flags) {
        if (w == f.name) {
            key.kind = f.kind;
            key.field = f.flag;
            return true;
        }
    }
    if (w == "ALL") { key.kind = Kind::All; return true; }
    if (w == "NEW") { key.kind = Kind::New; return true; }
    if (w == "OLD") { key.kind = Kind::Old; return true; }
    if (w == "RECENT") { key.kind = Kind::Recent; return true; }
    if (w == "KEYWORD" || w == "UNKEYWORD") {
        key.kind = w == "KEYWORD" ? Kind::Flag : Kind::NoFlag;
        if (!p.sp()) return false;
        auto a = p.atom();
        if (!a) return false;
        key.field = std::string(*a);
        return true;
    }
    static const struct { const char* name; const char* field; } headers[] = {
        {"FROM", "From"}, {"TO", "To"}, {"CC", "Cc"}, {"BCC", "Bcc"}, {"SUBJECT", "Subject"}};
    for (const auto& h : headers) {
        if (w == h.name) {
            key.kind = Kind::Header;
            key.field = h.field;
            return string_arg(p, key.value);
        }
    }
    if (w == "HEADER") {
        key.kind = Kind::Header;
        return string_arg(p, key.field) && string_arg(p, key.value);
    }
    if (w == "BODY") { key.kind = Kind::Body; return string_arg(p, key.value); }
    if (w == "TEXT") { key.kind = Kind::Text; return string_arg(p, key.value); }
    if (w == "BEFORE") return date_arg(p, key, Kind::Before);
    if (w == "ON") return date_arg(p, key, Kind::On);
    if (w == "SINCE") return date_arg(p, key, Kind::Since);
    if (w == "SENTBEFORE") return date_arg(p, key, Kind::SentBefore);
    if (w == "SENTON") return date_arg(p, key, Kind::SentOn);
    if (w == "SENTSINCE") return date_arg(p, key, Kind::SentSince);
    if (w == "LARGER" || w == "SMALLER") {
        key.kind = w == "LARGER" ? Kind::Larger : Kind::Smaller;
        if (!p.sp()) return false;
        auto n = p.number64();
        if (!n) return false;
        key.number = *n;
        return true;
    }
    if (w == "UID") {
        key.kind = Kind::Uid;
        if (!p.sp()) return false;
        auto set = SequenceSet::parse(p);
        if (!set) return false;
        key.set = std::move(*set);
        return true;
    }
    if (w == "NOT") {
        key.kind = Kind::Not;
        key.children.resize(1);
        return p.sp() && parse_key(p, key.children[0], depth + 1);
    }
    if (w == "OR") {
        key.kind = Kind::Or;
        key.children.resize(2);
        return p.sp() && parse_key(p, key.children[0], depth + 1) && p.sp() &&
               parse_key(p, key.children[1], depth + 1);
    }
    if (w == "MODSEQ") {
        // RFC 7162 3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence-valzer;
        // the entry only narrows which flag's change counts, and tern keeps
        // one mod-sequence per message, so it is parsed and not used.
        key.kind = Kind::ModSeq;
        if (!p.sp()) return false;
        if (p.peek('"')) {
            if (!p.string() || !p.sp()) return false;
            auto type = p.keyword();
            if (!type) return false;
            std::string t = upper(*type);
            if (t != "PRIV" && t != "SHARED" && t != "ALL") return p.fail("priv, shared or all");
            if (!p.sp()) return false;
        }
        auto n = p.number64();
        if (!n) return false;
        key.number = *n;
        return true;
    }
    return p.fail("a search key (ALL, SEEN, FROM, SUBJECT, SINCE, UID, ...)");
}

bool parse_return(Parser& p, SearchReturn& ret) {
    // search-return-opts = SP "RETURN" SP "(" [opt *(SP opt)] ")"
    if (!p.peek_ci("RETURN ")) return true;
    p.keyword();
    p.sp();
    if (!p.expect('(')) return false;
    ret.given = true;
    if (!p.take(')')) {
        while (true) {
            auto w = p.keyword();
            if (!w) return false;
            std::string o = upper(*w);
            if (o == "MIN") ret.min = true;
            else if (o == "MAX") ret.max = true;
            else if (o == "ALL") ret.all = true;
            else if (o == "COUNT") ret.count = true;
            else if (o == "SAVE") ret.save = true;
            else return p.fail("MIN, MAX, ALL, COUNT or SAVE");
            if (p.take(')')) break;
            if (!p.sp()) return false;
        }
    }
    // RFC 4731 3.1: RETURN () means RETURN (ALL).
    if (!ret.min && !ret.max && !ret.count && !ret.save) ret.all = true;
    return p.sp();
}

bool charset_arg(Parser& p, std::string& charset) {
    auto c = p.astring();
    if (!c) return false;
    charset = upper(*c);
    return p.sp();
}

}  // namespace

std::optional<SearchRequest> parse_search(Parser& p) {
    SearchRequest req;
    if (!parse_return(p, req.ret)) return std::nullopt;
    if (p.peek_ci("CHARSET ")) {
        p.keyword();
        p.sp();
        if (!charset_arg(p, req.charset)) return std::nullopt;
    }
    if (!parse_keys_until(p, req.key, 0, false)) return std::nullopt;
    return req;
}

std::optional<SortRequest> parse_sort(Parser& p) {
    SortRequest req;
    if (!parse_return(p, req.ret) || !p.expect('(')) return std::nullopt;
    static const struct { const char* name; SortKey::Field field; } fields[] = {
        {"ARRIVAL", SortKey::Field::Arrival}, {"CC", SortKey::Field::Cc},           {"DATE", SortKey::Field::Date},
        {"FROM", SortKey::Field::From},       {"SIZE", SortKey::Field::Size},       {"SUBJECT", SortKey::Field::Subject},
        {"TO", SortKey::Field::To},           {"DISPLAYFROM", SortKey::Field::DisplayFrom},
        {"DISPLAYTO", SortKey::Field::DisplayTo}};
    while (true) {
        auto w = p.keyword();
        if (!w) return std::nullopt;
        std::string name = upper(*w);
        bool reverse = false;
        if (name == "REVERSE") {
            reverse = true;
            if (!p.sp()) return std::nullopt;
            w = p.keyword();
            if (!w) return std::nullopt;
            name = upper(*w);
        }
        bool found = false;
        for (const auto& f : fields) {
            if (name == f.name) {
                req.keys.push_back({f.field, reverse});
                found = true;
            }
        }
        if (!found) {
            p.fail("a sort key (ARRIVAL, CC, DATE, FROM, SIZE, SUBJECT, TO)");
            return std::nullopt;
        }
        if (p.take(')')) break;
        if (!p.sp()) return std::nullopt;
    }
    if (!p.sp() || !charset_arg(p, req.charset) || !parse_keys_until(p, req.key, 0, false)) return std::nullopt;
    return req;
}

std::optional<ThreadRequest> parse_thread(Parser& p) {
    ThreadRequest req;
    auto w = p.keyword();
    if (!w) return std::nullopt;
    std::string a = upper(*w);
    if (a == "ORDEREDSUBJECT") req.algorithm = ThreadRequest::Algorithm::OrderedSubject;
    else if (a == "REFERENCES") req.algorithm = ThreadRequest::Algorithm::References;
    else {
        p.fail("a threading algorithm (REFERENCES or ORDEREDSUBJECT)");
        return std::nullopt;
    }
    if (!p.sp() || !charset_arg(p, req.charset) || !parse_keys_until(p, req.key, 0, false)) return std::nullopt;
    return req;
}

}  // namespace tern::imap
