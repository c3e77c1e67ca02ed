// SEARCH text matching: see search.hpp.
#include "lib/mime/search.hpp"

#include <algorithm>
#include <cstring>
#include <functional>

#include "lib/mime/section.hpp"

namespace tern::mime {
namespace {

// Simple case folding (Unicode CaseFolding.txt "C" mappings) for the
// blocks mail mostly uses.
uint32_t fold(uint32_t c) {
    if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x178) return 0xFF;
        if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F) return c == 0x17F ? 's' : c;
        bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
        if (odd_upper) return (c & 1) ? c + 1 : c;
        return (c & 1) ? c : c + 1;
    }
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;  // Greek capitals
    if (c == 0x3C2) return 0x3C3;                                // final sigma
    if (c >= 0x410 && c <= 0x42F) return c + 32;                 // Cyrillic
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

void put_utf8(std::string& out, uint32_t c) {
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xC0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xE0 | (c >> 12));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (c >> 18));
        out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    }
}

std::string_view part_charset(const Part& p) {
    for (const auto& param : p.params)
        if (iequals(param.name, "charset")) return param.value;
    return {};
}

// Walks the leaf parts whose content is text (text/*, and message parts
// that could not be parsed further are skipped: their text is in children).
bool any_text_part(const Part& p, std::string_view data, const std::function<bool(const Part&)>& fn) {
    if (p.is_multipart() || (p.is_message() && !p.children.empty())) {
        for (const auto& c : p.children)
            if (any_text_part(c, data, fn)) return true;
        return false;
    }
    return fn(p);
}

std::string part_text(const Part& p, std::string_view data) {
    std::string_view raw = data.substr(p.body_begin, p.body_end - p.body_begin);
    auto decoded = decode_transfer(raw, p.encoding);
    std::string bytes = decoded ? std::move(*decoded) : std::string(raw);
    return to_utf8(bytes, part_charset(p));
}

bool identity_encoding(std::string_view enc) {
    while (!enc.empty() && (enc.front() == ' ' || enc.front() == '\t')) enc.remove_prefix(1);
    while (!enc.empty() && (enc.back() == ' ' || enc.back() == '\t')) enc.remove_suffix(1);
    return enc.empty() || iequals(enc, "7bit") || iequals(enc, "8bit") || iequals(enc, "binary");
}

bool utf8_charset(std::string_view cs) {
    return cs.empty() || iequals(cs, "utf-8") || iequals(cs, "utf8") || iequals(cs, "us-ascii") || iequals(cs, "ascii");
}

bool header_text_contains(const Part& message, std::string_view data, const TextMatcher& m) {
    HeaderBlock h = parse_header(data.substr(message.header_begin, message.body_begin - message.header_begin));
    for (const auto& f : h.fields) {
        std::string line(f.name);
        line += ": ";
        line += decode_words(f.value);
        if (m.matches_text(line)) return true;
    }
    return false;
}

}  // namespace

std::string fold_case(std::string_view s) {
    // Folding never makes a character longer in UTF-8 (see fold()).
    std::string out(s.size(), '\0');
    char* o = out.data();
    size_t i = 0;
    while (i < s.size()) {
        unsigned char b = static_cast<unsigned char>(s[i]);
        if (b < 0x80) {
            *o++ = static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b);
            ++i;
            continue;
        }
        int len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
        if (len == 0 || i + static_cast<size_t>(len) > s.size()) {
            *o++ = static_cast<char>(b);
            ++i;
            continue;
        }
        uint32_t c = b & (0x7F >> len);
        bool ok = true;
        for (int k = 1; k < len; ++k) {
            unsigned char cb = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
            if ((cb & 0xC0) != 0x80) ok = false;
            c = (c << 6) | (cb & 0x3F);
        }
        if (!ok) {
            *o++ = static_cast<char>(b);
            ++i;
            continue;
        }
        std::string enc;
        put_utf8(enc, fold(c));
        std::memcpy(o, enc.data(), enc.size());
        o += enc.size();
        i += static_cast<size_t>(len);
    }
    out.resize(static_cast<size_t>(o - out.data()));
    return out;
}

size_t ascii_ifind(std::string_view hay, std::string_view lower_needle) {
    if (lower_needle.empty()) return 0;
    if (hay.size() < lower_needle.size()) return std::string_view::npos;
    const unsigned char lo = static_cast<unsigned char>(lower_needle[0]);
    const unsigned char up = lo >= 'a' && lo <= 'z' ? static_cast<unsigned char>(lo - 32) : lo;
    const char* base = hay.data();
    const char* last = base + (hay.size() - lower_needle.size());  // last possible start
    // Next occurrence of each case of the first byte, searched again only
    // when passed (no quadratic rescans when one case is rare).
    const char* next_lo = nullptr;
    const char* next_up = nullptr;
    const char* p = base;
    while (p <= last) {
        size_t span = static_cast<size_t>(last - p) + 1;
        if (!next_lo || (next_lo != last + 1 && next_lo < p)) {
            auto* f = static_cast<const char*>(std::memchr(p, lo, span));
            next_lo = f ? f : last + 1;
        }
        if (up == lo) {
            next_up = next_lo;
        } else if (!next_up || (next_up != last + 1 && next_up < p)) {
            auto* f = static_cast<const char*>(std::memchr(p, up, span));
            next_up = f ? f : last + 1;
        }
        const char* cand = std::min(next_lo, next_up);
        if (cand > last) return std::string_view::npos;
        size_t k = 1;
        while (k < lower_needle.size()) {
            unsigned char c = static_cast<unsigned char>(cand[k]);
            if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c + 32);
            if (c != static_cast<unsigned char>(lower_needle[k])) break;
            ++k;
        }
        if (k == lower_needle.size()) return static_cast<size_t>(cand - base);
        p = cand + 1;
    }
    return std::string_view::npos;
}

TextMatcher::TextMatcher(std::string_view needle_utf8) : needle_(fold_case(needle_utf8)) {
    ascii_ = std::all_of(needle_.begin(), needle_.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    has_s_ = needle_.find('s') != std::string::npos;
    has_space_ = needle_.find_first_of(" \t\r\n") != std::string::npos;
}

bool TextMatcher::matches(std::string_view folded) const {
    return folded.find(needle_) != std::string_view::npos;
}

bool TextMatcher::matches_text(std::string_view utf8) const {
    if (needle_.empty()) return true;
    if (ascii_) {
        // An ASCII needle matches folded text exactly where it matches the
        // text itself ignoring ASCII case: every other character folds to a
        // non-ASCII one, except U+017F (long s) which folds to "s".
        if (ascii_ifind(utf8, needle_) != std::string_view::npos) return true;
        if (!has_s_ || utf8.find("\xC5\xBF") == std::string_view::npos) return false;
    }
    return matches(fold_case(utf8));
}

bool header_contains(const Part& message, std::string_view data, std::string_view field, const TextMatcher& m) {
    return header_block_contains(data.substr(message.header_begin, message.body_begin - message.header_begin), field, m);
}

bool TextMatcher::absent_from_raw(std::string_view raw) const {
    // Decoding a header only unfolds lines (the needle holds no white space,
    // so it cannot span a fold) and decodes RFC 2047 words (none without
    // "=?"); folding maps no other character to ASCII than U+017F.
    if (!ascii_ || needle_.empty() || has_space_) return false;
    if (raw.find("=?") != std::string_view::npos) return false;
    if (has_s_ && raw.find("\xC5\xBF") != std::string_view::npos) return false;
    return ascii_ifind(raw, needle_) == std::string_view::npos;
}

bool header_block_contains(std::string_view header_block, std::string_view field, const TextMatcher& m) {
    if (m.absent_from_raw(header_block)) return false;  // most messages, without parsing
    HeaderBlock h = parse_header(header_block);
    for (const auto& f : h.fields)
        if (iequals(f.name, field) && m.matches_text(decode_words(f.value))) return true;
    return false;
}

bool body_contains(const Part& message, std::string_view data, const TextMatcher& m) {
    if (m.empty()) return true;
    return any_text_part(message, data, [&](const Part& p) {
        if (p.type != "text" && p.type != "message") return false;
        // UTF-8 (or ASCII) text that needs no decoding is matched in place.
        if (identity_encoding(p.encoding) && utf8_charset(part_charset(p)))
            return m.matches_text(data.substr(p.body_begin, p.body_end - p.body_begin));
        return m.matches_text(part_text(p, data));
    });
}

bool text_contains(const Part& message, std::string_view data, const TextMatcher& m) {
    return header_text_contains(message, data, m) || body_contains(message, data, m);
}

}  // namespace tern::mime
