// RFC 5321 path parsing (see address.hpp).  A hand-written scanner over a
// string_view: no allocation until the result is built, no recursion, so
// hostile input costs linear time.
#include "lib/address/address.hpp"

#include <arpa/inet.h>

namespace tern::address {
namespace {

bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_utf8(unsigned char c) { return c >= 0x80; }

// RFC 5322 atext.
bool is_atext(unsigned char c) {
    if (is_alpha(c) || is_digit(c)) return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '/': case '=': case '?': case '^': case '_': case '`': case '{': case '|': case '}':
    case '~':
        return true;
    default:
        return false;
    }
}

// Length of a well-formed UTF-8 sequence starting at s[i] (RFC 3629), or 0.
size_t utf8_len(std::string_view s, size_t i) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t min;
    if (c >= 0xc2 && c <= 0xdf) { n = 2; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { n = 3; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 4; min = 0x10000; }
    else return 0;
    if (i + n > s.size()) return 0;
    uint32_t cp = c & (0xff >> (n + 1));
    for (size_t k = 1; k < n; ++k) {
        auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

Error bad(const PathOptions& o, std::string_view why) {
    return Error{std::string(o.sender ? "501 5.1.7 Bad sender address syntax"
                                      : "501 5.1.3 Bad recipient address syntax") +
                 (why.empty() ? "" : " (") + std::string(why) + (why.empty() ? "" : ")")};
}

// Sub-domain = Let-dig [Ldh-str], or a U-label when UTF-8 is allowed.
bool valid_label(std::string_view label, bool allow_utf8) {
    if (label.empty() || label.size() > 63 * 4) return false;
    bool has_utf8 = false;
    for (size_t i = 0; i < label.size();) {
        auto c = static_cast<unsigned char>(label[i]);
        if (is_utf8(c)) {
            size_t n = allow_utf8 ? utf8_len(label, i) : 0;
            if (!n) return false;
            has_utf8 = true;
            i += n;
            continue;
        }
        if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
        ++i;
    }
    if (!has_utf8 && label.size() > 63) return false;
    return label.front() != '-' && label.back() != '-';
}

// address-literal = "[" ( IPv4 / "IPv6:" IPv6 / General-address-literal ) "]"
bool valid_address_literal(std::string_view lit) {
    if (lit.size() < 3 || lit.front() != '[' || lit.back() != ']') return false;
    std::string inner(lit.substr(1, lit.size() - 2));
    unsigned char buf[16];
    if (inet_pton(AF_INET, inner.c_str(), buf) == 1) return true;
    if (inner.size() > 5 && lower_ascii(inner.substr(0, 5)) == "ipv6:")
        return inet_pton(AF_INET6, inner.c_str() + 5, buf) == 1;
    // General-address-literal: Standardized-tag ":" 1*dcontent; nothing
    // registered beyond IPv6, so refuse rather than guess.
    return false;
}

// Reads a local part at s[i...]; returns decoded text or an error reason.
bool read_local(std::string_view s, size_t& i, std::string& out, bool allow_utf8, bool& utf8,
                std::string& why) {
    if (i < s.size() && s[i] == '"') {
        ++i;
        while (i < s.size() && s[i] != '"') {
            auto c = static_cast<unsigned char>(s[i]);
            if (c == '\\') {
                if (i + 1 >= s.size()) { why = "unterminated quoted-pair"; return false; }
                auto q = static_cast<unsigned char>(s[i + 1]);
                if (q < 32 || q > 126) { why = "bad quoted-pair"; return false; }
                out.push_back(static_cast<char>(q));
                i += 2;
            } else if (is_utf8(c)) {
                size_t n = allow_utf8 ? utf8_len(s, i) : 0;
                if (!n) { why = allow_utf8 ? "bad UTF-8" : "non-ASCII without SMTPUTF8"; return false; }
                out.append(s.substr(i, n));
                utf8 = true;
                i += n;
            } else if (c >= 32 && c <= 126) {
                out.push_back(static_cast<char>(c));
                ++i;
            } else {
                why = "control character in quoted string";
                return false;
            }
        }
        if (i >= s.size()) { why = "unterminated quoted string"; return false; }
        ++i;  // closing quote
        return true;
    }
    // Dot-string: Atom *("." Atom)
    bool want_atom = true;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (is_atext(c)) {
            out.push_back(static_cast<char>(c));
            ++i;
            want_atom = false;
        } else if (is_utf8(c)) {
            size_t n = allow_utf8 ? utf8_len(s, i) : 0;
            if (!n) { why = allow_utf8 ? "bad UTF-8" : "non-ASCII without SMTPUTF8"; return false; }
            out.append(s.substr(i, n));
            utf8 = true;
            i += n;
            want_atom = false;
        } else if (c == '.') {
            if (want_atom) { why = "empty atom in local part"; return false; }
            out.push_back('.');
            ++i;
            want_atom = true;
        } else {
            break;
        }
    }
    if (want_atom) { why = out.empty() ? "empty local part" : "local part ends with a dot"; return false; }
    return true;
}

// Reads a Domain or address literal at s[i...]; stops at the first byte that cannot belong to it.
bool read_domain(std::string_view s, size_t& i, std::string& out, bool allow_utf8, bool& utf8,
                 std::string& why) {
    size_t start = i;
    if (i < s.size() && s[i] == '[') {
        while (i < s.size() && s[i] != ']') ++i;
        if (i >= s.size()) { why = "unterminated address literal"; return false; }
        ++i;
        std::string_view lit = s.substr(start, i - start);
        if (!valid_address_literal(lit)) { why = "bad address literal"; return false; }
        out = lower_ascii(lit);
        return true;
    }
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (is_alpha(c) || is_digit(c) || c == '-' || c == '.' || is_utf8(c)) ++i;
        else break;
    }
    std::string_view d = s.substr(start, i - start);
    if (!valid_domain(d, allow_utf8)) {
        why = d.empty() ? "missing domain" : "bad domain";
        return false;
    }
    for (unsigned char c : d)
        if (is_utf8(c)) utf8 = true;
    out = lower_ascii(d);
    return true;
}

Path make_path(std::string local, std::string domain, bool utf8) {
    Path p;
    p.address = quote_local(local);
    if (!domain.empty()) p.address += "@" + domain;
    p.local = std::move(local);
    p.domain = std::move(domain);
    p.utf8 = utf8;
    return p;
}

}  // namespace

std::string lower_ascii(std::string_view text) {
    std::string out(text);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool valid_domain(std::string_view domain, bool allow_utf8) {
    if (domain.empty() || domain.size() > kMaxDomain) return false;
    size_t start = 0;
    while (true) {
        size_t dot = domain.find('.', start);
        std::string_view label = domain.substr(start, dot == std::string_view::npos ? dot : dot - start);
        if (!valid_label(label, allow_utf8)) return false;
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

std::string quote_local(std::string_view local) {
    bool dot_string = !local.empty() && local.front() != '.' && local.back() != '.';
    for (size_t i = 0; dot_string && i < local.size(); ++i) {
        auto c = static_cast<unsigned char>(local[i]);
        if (c == '.' && i + 1 < local.size() && local[i + 1] == '.') dot_string = false;
        else if (!is_atext(c) && c != '.' && !is_utf8(c)) dot_string = false;
    }
    if (dot_string) return std::string(local);
    std::string out = "\"";
    for (char c : local) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
    return out;
}

Result<Path> parse_path(std::string_view text, const PathOptions& o, size_t* consumed) {
    size_t i = 0;
    bool bracketed = !text.empty() && text[0] == '<';
    if (!bracketed && !o.allow_bare) return bad(o, "missing <>");
    if (bracketed) ++i;
    if (bracketed && i < text.size() && text[i] == '>') {
        if (!o.allow_null) return bad(o, "empty address");
        if (consumed) *consumed = i + 1;
        return Path{};
    }
    // Source route "@a,@b:" (RFC 5321 4.1.2, C.): accepted and ignored.
    if (bracketed && i < text.size() && text[i] == '@') {
        size_t colon = text.find(':', i);
        size_t close = text.find('>', i);
        if (colon == std::string_view::npos || colon > close) return bad(o, "bad source route");
        std::string_view route = text.substr(i, colon - i);
        size_t start = 0;
        while (start <= route.size()) {
            size_t comma = route.find(',', start);
            std::string_view hop = route.substr(start, comma == std::string_view::npos ? comma : comma - start);
            if (hop.size() < 2 || hop[0] != '@') return bad(o, "bad source route");
            std::string d;
            bool u = false;
            std::string why;
            size_t k = 1;
            if (!read_domain(hop, k, d, o.allow_utf8, u, why) || k != hop.size()) return bad(o, "bad source route");
            if (comma == std::string_view::npos) break;
            start = comma + 1;
        }
        i = colon + 1;
    }
    size_t mailbox_start = i;
    std::string local, domain, why;
    bool utf8 = false;
    if (!read_local(text, i, local, o.allow_utf8, utf8, why)) return bad(o, why);
    if (local.size() > kMaxLocalPart) return bad(o, "local part too long");
    if (i < text.size() && text[i] == '@') {
        ++i;
        if (!read_domain(text, i, domain, o.allow_utf8, utf8, why)) return bad(o, why);
    } else if (!(o.allow_postmaster && lower_ascii(local) == "postmaster")) {
        return bad(o, "missing domain");
    } else {
        local = "postmaster";  // RFC 5321 4.5.1: case-insensitive, no domain
    }
    if (i - mailbox_start > kMaxPath) return bad(o, "address too long");
    if (bracketed) {
        if (i >= text.size() || text[i] != '>') return bad(o, "missing >");
        ++i;
    } else if (i < text.size() && text[i] != ' ') {
        return bad(o, "unexpected character");
    }
    if (consumed) *consumed = i;
    return make_path(std::move(local), std::move(domain), utf8);
}

Result<Path> parse_address(std::string_view text, bool allow_utf8) {
    PathOptions o;
    o.allow_utf8 = allow_utf8;
    o.allow_bare = true;
    size_t used = 0;
    auto r = parse_path(text, o, &used);
    if (!r) return r;
    if (used != text.size()) return Error{"trailing characters after address"};
    return r;
}

LocalParts split_extension(std::string_view local, std::string_view delimiters) {
    LocalParts parts{local, {}, false};
    if (delimiters.empty() || local.empty()) return parts;
    size_t pos = local.find_first_of(delimiters);
    if (pos == std::string_view::npos || pos == 0) return parts;
    parts.base = local.substr(0, pos);
    parts.extension = local.substr(pos + 1);
    parts.has_extension = true;
    return parts;
}

}  // namespace tern::address
