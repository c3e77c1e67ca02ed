// Small text helpers shared by tern.conf and services.conf parsing (internal
// to lib/config; not part of its interface).
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace tern::config::text {

inline bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// White space inside a line; '\n' separates lines and is never part of one.
inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

inline std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// A value quoted for a diagnostic: control bytes as \xNN, long values cut,
// so a hostile file cannot forge or flood log lines.
inline std::string quote(std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    std::string out = "'";
    for (char c : s.substr(0, 200)) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            out += "\\x";
            out += hex[(c >> 4) & 0xf];
            out += hex[c & 0xf];
        } else {
            out += c;
        }
    }
    if (s.size() > 200) out += "...";
    return out + "'";
}

}  // namespace tern::config::text
