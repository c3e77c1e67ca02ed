// Folder and message file names: see maildir_names.hpp and maildir_store.hpp.
#include "lib/mailstore/maildir_names.hpp"

#include <algorithm>
#include <cctype>

#include "lib/mailstore/maildir_store.hpp"
#include "lib/mailstore/mailstore.hpp"

namespace tern::mailstore {
namespace {

constexpr struct {
    char letter;
    uint8_t flag;
} kLetters[] = {{'D', kDraft}, {'F', kFlagged}, {'R', kAnswered}, {'S', kSeen}, {'T', kDeleted}};

// The number after a ",S=" or ",W=" at `at` (nullopt without digits).
std::optional<uint64_t> field_number(std::string_view base, size_t at) {
    size_t i = at + 3;
    uint64_t n = 0;
    size_t digits = 0;
    while (i < base.size() && std::isdigit(static_cast<unsigned char>(base[i])) && digits < 19) {
        n = n * 10 + static_cast<uint64_t>(base[i] - '0');
        ++i;
        ++digits;
    }
    if (digits == 0) return std::nullopt;
    return n;
}

bool needs_escape(unsigned char c, bool first) {
    return c < 0x20 || c == 0x7f || c == '.' || c == '/' || c == '%' || (first && c == '~');
}

}  // namespace

MessageName parse_message_name(std::string_view name) {
    // A first SELECT parses every name of the folder: the bytes are not
    // visited one by one, memchr() jumps to each ':' and ','.  The first
    // ":2," ends the base; the first ",S=" and ",W=" in the base give the sizes.
    MessageName m;
    m.base = name;
    for (size_t i = 0; (i = name.find(':', i)) != std::string_view::npos; ++i)
        if (name.substr(i + 1, 2) == "2,") {
            m.base = name.substr(0, i);
            m.letters = name.substr(i + 3);
            m.has_info = true;
            break;
        }
    std::string_view base = m.base;
    bool s_seen = false, w_seen = false;
    for (size_t i = 0; (i = base.find(',', i)) != std::string_view::npos && i + 2 < base.size(); ++i) {
        if (base[i + 2] != '=') continue;
        if (base[i + 1] == 'S' && !s_seen) {
            s_seen = true;
            m.size = field_number(base, i);
        }
        if (base[i + 1] == 'W' && !w_seen) {
            w_seen = true;
            m.crlf_size = field_number(base, i);
        }
    }
    return m;
}

uint8_t flags_from_letters(std::string_view letters) {
    uint8_t flags = 0;
    for (char c : letters)
        for (const auto& l : kLetters)
            if (c == l.letter) flags |= l.flag;
    return flags;
}

std::string message_file_name(std::string_view base, uint8_t flags, std::string_view keep) {
    std::string letters;
    for (const auto& l : kLetters)
        if (flags & l.flag) letters += l.letter;
    for (char c : keep) {
        bool mapped = std::any_of(std::begin(kLetters), std::end(kLetters), [c](const auto& l) { return l.letter == c; });
        if (!mapped && std::isalpha(static_cast<unsigned char>(c)) && letters.find(c) == std::string::npos) letters += c;
    }
    std::sort(letters.begin(), letters.end());
    std::string out(base);
    out += ":2,";
    out += letters;
    return out;
}

std::string folder_dir_name(std::string_view folder) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out = ".";
    bool first = true;
    for (unsigned char c : folder) {
        if (c == static_cast<unsigned char>(kSeparator)) {
            out += '.';
            first = true;
            continue;
        }
        if (needs_escape(c, first)) {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
        first = false;
    }
    return out;
}

std::optional<std::string> folder_from_dir_name(std::string_view dir) {
    if (dir.size() < 2 || dir[0] != '.' || dir == "..") return std::nullopt;
    std::string out;
    for (size_t i = 1; i < dir.size(); ++i) {
        char c = dir[i];
        if (c == '.') {
            if (i + 1 == dir.size() || dir[i + 1] == '.' || i == 1) return std::nullopt;  // empty level
            out += kSeparator;
        } else if (c == '%' && i + 2 < dir.size() && std::isxdigit(static_cast<unsigned char>(dir[i + 1])) &&
                   std::isxdigit(static_cast<unsigned char>(dir[i + 2]))) {
            out += static_cast<char>(std::stoi(std::string(dir.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace tern::mailstore
