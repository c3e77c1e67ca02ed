// Modified UTF-7 (see mutf7.hpp).
#include "lib/imap/mutf7.hpp"

#include <cstdint>
#include <vector>

namespace tern::imap {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == ',') return 63;
    return -1;
}

// Decodes one UTF-8 code point at s[i]; advances i.  -1 when invalid.
int32_t next_code_point(std::string_view s, size_t& i) {
    auto c = static_cast<unsigned char>(s[i]);
    int len;
    int32_t cp;
    if (c < 0x80) { ++i; return c; }
    if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
    else return -1;
    if (i + static_cast<size_t>(len) > s.size()) return -1;
    for (int k = 1; k < len; ++k) {
        auto cc = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
        if ((cc & 0xc0) != 0x80) return -1;
        cp = (cp << 6) | (cc & 0x3f);
    }
    static const int32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
    i += static_cast<size_t>(len);
    return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xc0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xe0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
        out += static_cast<char>(0xf0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    }
}

void flush_base64(std::string& out, const std::vector<uint16_t>& units) {
    out += '&';
    uint32_t bits = 0;
    int nbits = 0;
    for (uint16_t u : units) {
        bits = (bits << 16) | u;
        nbits += 16;
        while (nbits >= 6) {
            nbits -= 6;
            out += kAlphabet[(bits >> nbits) & 0x3f];
        }
    }
    if (nbits > 0) out += kAlphabet[(bits << (6 - nbits)) & 0x3f];
    out += '-';
}

}  // namespace

bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size())
        if (next_code_point(s, i) < 0) return false;
    return true;
}

std::optional<std::string> mutf7_encode(std::string_view utf8) {
    std::string out;
    std::vector<uint16_t> units;
    size_t i = 0;
    while (i < utf8.size()) {
        int32_t cp = next_code_point(utf8, i);
        if (cp < 0) return std::nullopt;
        if (cp >= 0x20 && cp <= 0x7e) {
            if (!units.empty()) {
                flush_base64(out, units);
                units.clear();
            }
            if (cp == '&') out += "&-";
            else out += static_cast<char>(cp);
            continue;
        }
        if (cp >= 0x10000) {
            uint32_t v = static_cast<uint32_t>(cp) - 0x10000;
            units.push_back(static_cast<uint16_t>(0xd800 | (v >> 10)));
            units.push_back(static_cast<uint16_t>(0xdc00 | (v & 0x3ff)));
        } else {
            units.push_back(static_cast<uint16_t>(cp));
        }
    }
    if (!units.empty()) flush_base64(out, units);
    return out;
}

std::optional<std::string> mutf7_decode(std::string_view in) {
    std::string out;
    size_t i = 0;
    bool last_was_encoded = false;
    while (i < in.size()) {
        auto c = static_cast<unsigned char>(in[i]);
        if (c < 0x20 || c > 0x7e) return std::nullopt;
        if (c != '&') {
            out += static_cast<char>(c);
            ++i;
            last_was_encoded = false;
            continue;
        }
        ++i;
        if (i < in.size() && in[i] == '-') {
            out += '&';
            ++i;
            last_was_encoded = false;
            continue;
        }
        if (last_was_encoded) return std::nullopt;  // runs must be merged
        uint32_t bits = 0;
        int nbits = 0;
        uint32_t high = 0;  // pending high surrogate
        size_t units = 0;
        while (i < in.size() && in[i] != '-') {
            int v = b64_value(in[i]);
            if (v < 0) return std::nullopt;
            bits = (bits << 6) | static_cast<uint32_t>(v);
            nbits += 6;
            ++i;
            if (nbits >= 16) {
                nbits -= 16;
                uint32_t u = (bits >> nbits) & 0xffff;
                bits &= (1u << nbits) - 1;
                ++units;
                if (high) {
                    if (u < 0xdc00 || u > 0xdfff) return std::nullopt;
                    append_utf8(out, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
                    high = 0;
                } else if (u >= 0xd800 && u <= 0xdbff) {
                    high = u;
                } else if (u >= 0xdc00 && u <= 0xdfff) {
                    return std::nullopt;
                } else {
                    if (u >= 0x20 && u <= 0x7e) return std::nullopt;  // must be written directly
                    append_utf8(out, u);
                }
            }
        }
        if (i >= in.size() || units == 0 || high || nbits >= 6 || bits != 0) return std::nullopt;
        ++i;  // '-'
        last_was_encoded = true;
    }
    return out;
}

}  // namespace tern::imap
