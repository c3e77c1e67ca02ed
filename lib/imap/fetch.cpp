// FETCH attribute parsing (see fetch.hpp).
#include "lib/imap/fetch.hpp"

#include "lib/imap/response.hpp"

namespace tern::imap {

namespace {

using Kind = FetchItem::Kind;

bool parse_partial(Parser& p, BodySection& s) {
    if (!p.take('<')) return true;
    auto origin = p.number64();
    if (!origin || !p.expect('.')) return false;
    auto length = p.number64();
    if (!length) return false;
    if (*length == 0) return p.fail("a non-zero length in <origin.length>");
    if (!p.expect('>')) return false;
    s.origin = *origin;
    s.length = *length;
    return true;
}

// section-part and section-text inside the brackets (caller took "[").
bool parse_section(Parser& p, BodySection& s, bool binary) {
    if (p.take(']')) return true;
    // section-part = nz-number *("." nz-number)
    while (!p.at_end() && p.rest()[0] >= '0' && p.rest()[0] <= '9') {
        auto n = p.nz_number();
        if (!n) return false;
        s.part.push_back(*n);
        if (!p.take('.')) break;
        if (!(p.rest().size() && p.rest()[0] >= '0' && p.rest()[0] <= '9')) {
            if (binary || p.peek(']')) return p.fail("a part number");
            break;  // "1.HEADER"
        }
    }
    if (binary || p.peek(']')) return p.expect(']');
    auto word = p.keyword();
    if (!word) return false;
    std::string w = upper(*word);
    if (w == "HEADER") s.text = BodySection::Text::Header;
    else if (w == "TEXT") s.text = BodySection::Text::Text;
    else if (w == "MIME" && !s.part.empty()) s.text = BodySection::Text::Mime;
    else if (w == "HEADER.FIELDS") s.text = BodySection::Text::HeaderFields;
    else if (w == "HEADER.FIELDS.NOT") s.text = BodySection::Text::HeaderFieldsNot;
    else return p.fail("HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME (after a part number)");
    if (s.text == BodySection::Text::HeaderFields || s.text == BodySection::Text::HeaderFieldsNot) {
        if (!p.sp() || !p.expect('(')) return false;
        while (true) {
            auto f = p.astring();
            if (!f) return false;
            if (f->empty()) return p.fail("a header field name");
            s.fields.push_back(std::move(*f));
            if (p.take(')')) break;
            if (!p.sp()) return false;
        }
    }
    return p.expect(']');
}

bool parse_item(Parser& p, std::vector<FetchItem>& items, bool in_list) {
    auto word = p.keyword();
    if (!word) return false;
    std::string w = upper(*word);
    auto add = [&](Kind k) { items.push_back(FetchItem{k, false, {}}); return true; };
    // RFC 9051 6.4.5: the macros stand alone, never inside a list.
    if (in_list && (w == "ALL" || w == "FAST" || w == "FULL")) return p.fail("an attribute (ALL, FAST and FULL cannot be in a list)");
    if (w == "ALL") { add(Kind::Flags); add(Kind::InternalDate); add(Kind::Rfc822Size); return add(Kind::Envelope); }
    if (w == "FAST") { add(Kind::Flags); add(Kind::InternalDate); return add(Kind::Rfc822Size); }
    if (w == "FULL") { add(Kind::Flags); add(Kind::InternalDate); add(Kind::Rfc822Size); add(Kind::Envelope); return add(Kind::Body); }
    if (w == "ENVELOPE") return add(Kind::Envelope);
    if (w == "FLAGS") return add(Kind::Flags);
    if (w == "INTERNALDATE") return add(Kind::InternalDate);
    if (w == "RFC822") return add(Kind::Rfc822);
    if (w == "RFC822.HEADER") return add(Kind::Rfc822Header);
    if (w == "RFC822.SIZE") return add(Kind::Rfc822Size);
    if (w == "RFC822.TEXT") return add(Kind::Rfc822Text);
    if (w == "BODYSTRUCTURE") return add(Kind::BodyStructure);
    if (w == "UID") return add(Kind::Uid);
    if (w == "MODSEQ") return add(Kind::ModSeq);
    if (w == "BODY" || w == "BODY.PEEK") {
        if (!p.peek('[')) {
            if (w == "BODY.PEEK") return p.fail("\"[\" after BODY.PEEK");
            return add(Kind::Body);
        }
        p.take('[');
        FetchItem item{Kind::BodySection, w == "BODY.PEEK", {}};
        if (!parse_section(p, item.section, false) || !parse_partial(p, item.section)) return false;
        items.push_back(std::move(item));
        return true;
    }
    if (w == "BINARY" || w == "BINARY.PEEK" || w == "BINARY.SIZE") {
        if (!p.expect('[')) return false;
        FetchItem item{w == "BINARY.SIZE" ? Kind::BinarySize : Kind::Binary, w == "BINARY.PEEK", {}};
        if (!parse_section(p, item.section, true)) return false;
        if (item.kind == Kind::Binary && !parse_partial(p, item.section)) return false;
        items.push_back(std::move(item));
        return true;
    }
    return p.fail("a FETCH attribute (FLAGS, UID, ENVELOPE, BODY[...], ...)");
}

bool parse_modifiers(Parser& p, FetchRequest& req) {
    // fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"
    if (!p.expect('(')) return false;
    while (true) {
        auto word = p.keyword();
        if (!word) return false;
        std::string w = upper(*word);
        if (w == "CHANGEDSINCE") {
            if (!p.sp()) return false;
            auto n = p.number64();
            if (!n) return false;
            if (*n == 0) return p.fail("a non-zero mod-sequence");
            req.changed_since = *n;
        } else if (w == "VANISHED") {
            req.vanished = true;
        } else {
            return p.fail("CHANGEDSINCE or VANISHED");
        }
        if (p.take(')')) break;
        if (!p.sp()) return false;
    }
    if (req.vanished && !req.changed_since) return p.fail("CHANGEDSINCE with VANISHED");
    return true;
}

}  // namespace

std::string FetchItem::response_name() const {
    static const char* const names[] = {"ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER",
                                        "RFC822.SIZE", "RFC822.TEXT", "BODY", "BODYSTRUCTURE", "UID",
                                        "MODSEQ", "BODY", "BINARY", "BINARY.SIZE"};
    std::string out = names[static_cast<int>(kind)];
    if (kind != Kind::BodySection && kind != Kind::Binary && kind != Kind::BinarySize) return out;
    out += '[';
    for (size_t i = 0; i < section.part.size(); ++i) {
        if (i) out += '.';
        out += std::to_string(section.part[i]);
    }
    static const char* const texts[] = {"", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"};
    if (section.text != BodySection::Text::All) {
        if (!section.part.empty()) out += '.';
        out += texts[static_cast<int>(section.text)];
    }
    if (!section.fields.empty()) {
        out += " (";
        for (size_t i = 0; i < section.fields.size(); ++i) {
            if (i) out += ' ';
            append_astring(out, section.fields[i]);
        }
        out += ')';
    }
    out += ']';
    if (section.origin) out += '<' + std::to_string(*section.origin) + '>';
    return out;
}

bool FetchRequest::has(FetchItem::Kind kind) const {
    for (const auto& i : items)
        if (i.kind == kind) return true;
    return false;
}

bool FetchRequest::sets_seen() const {
    for (const auto& i : items) {
        if (i.kind == Kind::Rfc822 || i.kind == Kind::Rfc822Text) return true;
        if ((i.kind == Kind::BodySection || i.kind == Kind::Binary) && !i.peek) return true;
    }
    return false;
}

std::optional<FetchRequest> parse_fetch(Parser& p) {
    FetchRequest req;
    if (p.take('(')) {
        while (true) {
            if (!parse_item(p, req.items, true)) return std::nullopt;
            if (p.take(')')) break;
            if (!p.take(' ')) {
                p.fail("a space or \")\"");
                return std::nullopt;
            }
        }
        if (req.items.empty()) {
            p.fail("a FETCH attribute");
            return std::nullopt;
        }
    } else if (!parse_item(p, req.items, false)) {
        return std::nullopt;
    }
    if (p.take(' ') && !parse_modifiers(p, req)) return std::nullopt;
    if (!p.end()) return std::nullopt;
    return req;
}

}  // namespace tern::imap
