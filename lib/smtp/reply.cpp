// SMTP reply formatting and parsing (see reply.hpp).
#include "lib/smtp/reply.hpp"

namespace tern::smtp {
namespace {

void append_line(std::string& out, int code, char sep, std::string_view enhanced, std::string_view text) {
    out += std::to_string(code);
    out.push_back(sep);
    if (!enhanced.empty()) {
        out += enhanced;
        out.push_back(' ');
    }
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        out.push_back(u < 32 || u == 127 ? '?' : c);
    }
    out += "\r\n";
}

}  // namespace

std::string format_reply(int code, std::string_view enhanced, std::string_view text) {
    std::string out;
    out.reserve(text.size() + 16);
    append_line(out, code, ' ', enhanced, text);
    return out;
}

std::string format_multiline(int code, std::string_view enhanced, const std::vector<std::string>& lines) {
    std::string out;
    if (lines.empty()) {
        append_line(out, code, ' ', enhanced, "");
        return out;
    }
    for (size_t i = 0; i < lines.size(); ++i)
        append_line(out, code, i + 1 == lines.size() ? ' ' : '-', enhanced, lines[i]);
    return out;
}

bool parse_reply_line(std::string_view line, ReplyLine& out) {
    if (line.size() < 3) return false;
    for (int i = 0; i < 3; ++i)
        if (line[i] < '0' || line[i] > '9') return false;
    if (line[0] < '2' || line[0] > '5') return false;
    out.code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (line.size() == 3) {
        out.last = true;
        out.text = {};
        return true;
    }
    if (line[3] != ' ' && line[3] != '-') return false;
    out.last = line[3] == ' ';
    out.text = line.substr(4);
    return true;
}

}  // namespace tern::smtp
