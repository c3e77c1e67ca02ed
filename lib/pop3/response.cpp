// POP3 status lines and the RETR/TOP multi-line encoder (see response.hpp).
#include "lib/pop3/response.hpp"

#include <cstring>

namespace tern::pop3 {
namespace {

std::string status_line(std::string_view status, std::string_view code, std::string_view text) {
    std::string line(status);
    if (!code.empty()) {
        line += " [";
        line += code;
        line += ']';
    }
    if (!text.empty()) line += ' ';
    for (char c : text) {
        if (line.size() >= kMaxResponseLine - 2) break;
        auto u = static_cast<unsigned char>(c);
        line.push_back(u < 0x20 || u == 0x7f ? '?' : c);
    }
    line += "\r\n";
    return line;
}

}  // namespace

std::string ok(std::string_view text) { return status_line("+OK", "", text); }

std::string err(std::string_view code, std::string_view text) { return status_line("-ERR", code, text); }

MultilineEncoder::MultilineEncoder(std::optional<uint32_t> body_lines) : limit_(body_lines) {}

void MultilineEncoder::end_line(std::string& out) {
    out += "\r\n";
    if (in_header_) {
        // RFC 5322 2.1: the header ends at the first empty line, which TOP sends too.
        if (!line_has_content_) {
            in_header_ = false;
            if (limit_ && *limit_ == 0) done_ = true;
        }
    } else if (limit_ && ++body_lines_ >= *limit_) {
        done_ = true;
    }
    at_line_start_ = true;
    line_has_content_ = false;
}

bool MultilineEncoder::feed(std::string_view piece, std::string& out) {
    if (done_) return false;
    const char* p = piece.data();
    const char* end = p + piece.size();
    if (pending_cr_ && p < end) {
        // A CR at the end of the previous piece: half of a stored CRLF, or a bare CR.
        pending_cr_ = false;
        if (*p == '\n') {
            ++p;
            end_line(out);
            if (done_) return false;
        } else {
            out += '\r';
            at_line_start_ = false;
            line_has_content_ = true;
        }
    }
    while (p < end) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
        const char* stop = nl ? nl : end;
        size_t len = static_cast<size_t>(stop - p);
        // The store keeps LF, but a CRLF that slipped in must not become CR CR LF.
        bool cr = len > 0 && stop[-1] == '\r';
        if (cr) --len;
        if (len > 0) {
            if (at_line_start_ && *p == '.') out += '.';  // RFC 1939 3 byte-stuffing
            out.append(p, len);
            at_line_start_ = false;
            line_has_content_ = true;
        }
        if (!nl) {
            pending_cr_ = cr;
            break;
        }
        p = nl + 1;
        end_line(out);
        if (done_) return false;
    }
    return true;
}

void MultilineEncoder::finish(std::string& out) {
    if (pending_cr_ && !done_) {
        out += '\r';
        at_line_start_ = false;
    }
    pending_cr_ = false;
    if (!at_line_start_) out += "\r\n";
    out += ".\r\n";
    done_ = true;
}

}  // namespace tern::pop3
