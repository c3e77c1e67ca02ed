// Writing IMAP responses (see response.hpp).
#include "lib/imap/response.hpp"

#include "lib/imap/parser.hpp"

namespace tern::imap {

namespace {

// Long strings go as literals: clients handle them, and a literal needs no
// escaping pass.
constexpr size_t kQuotedMax = 1024;

bool quotable(std::string_view s, bool utf8) {
    if (s.size() > kQuotedMax) return false;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '\r' || c == '\n' || c == 0) return false;
        if (c >= 0x80 && !utf8) return false;
    }
    return true;
}

}  // namespace

void append_literal(std::string& out, std::string_view s, bool binary) {
    if (binary) out += '~';
    out += '{';
    out += std::to_string(s.size());
    out += "}\r\n";
    out.append(s);
}

void append_string(std::string& out, std::string_view s, bool utf8) {
    if (!quotable(s, utf8)) {
        append_literal(out, s);
        return;
    }
    out += '"';
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
}

void append_nstring(std::string& out, const std::optional<std::string_view>& s, bool utf8) {
    if (!s) out += "NIL";
    else append_string(out, *s, utf8);
}

void append_astring(std::string& out, std::string_view s, bool utf8) {
    bool atom = !s.empty();
    for (char c : s)
        if (!is_astring_char(static_cast<unsigned char>(c))) atom = false;
    if (atom) out.append(s);
    else append_string(out, s, utf8);
}

std::string status_line(std::string_view tag, std::string_view status, std::string_view code, std::string_view text) {
    std::string out;
    out.reserve(tag.size() + status.size() + code.size() + text.size() + 8);
    out.append(tag);
    out += ' ';
    out.append(status);
    if (!code.empty()) {
        out += " [";
        out.append(code);
        out += ']';
    }
    out += ' ';
    for (char c : text) out += (c == '\r' || c == '\n' || c == 0) ? ' ' : c;
    if (text.empty()) out += "done";
    out += "\r\n";
    return out;
}

}  // namespace tern::imap
