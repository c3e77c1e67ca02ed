// Outbound message encoding: CRLF, dot-stuffing, 8-bit downgrade (see outbound.hpp).
#include "lib/smtp/outbound.hpp"

#include <vector>

namespace tern::smtp {

namespace {

constexpr int kMaxDepth = 20;  // nested multiparts followed before the rest is left alone

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

struct Header {
    std::string name;  // lower case
    std::string raw;   // the header's lines as written, LF-terminated
    std::string value; // unfolded value
};

// Splits an entity into its header fields and body (after the empty line).
void split_entity(std::string_view entity, std::vector<Header>& headers, std::string_view& body, bool& had_blank) {
    size_t pos = 0;
    had_blank = false;
    while (pos < entity.size()) {
        size_t nl = entity.find('\n', pos);
        size_t end = nl == std::string_view::npos ? entity.size() : nl + 1;
        std::string_view line = entity.substr(pos, end - pos);
        std::string_view content = line.substr(0, line.size() - (line.back() == '\n' ? 1 : 0));
        if (content.empty() || content == "\r") {
            pos = end;
            had_blank = true;
            break;
        }
        if ((content[0] == ' ' || content[0] == '\t') && !headers.empty()) {
            headers.back().raw += line;
            headers.back().value += ' ';
            headers.back().value += content;
        } else {
            size_t colon = content.find(':');
            Header h;
            h.name = lower(content.substr(0, colon == std::string_view::npos ? 0 : colon));
            h.raw = std::string(line);
            if (colon != std::string_view::npos) h.value = std::string(content.substr(colon + 1));
            headers.push_back(std::move(h));
        }
        pos = end;
    }
    body = entity.substr(pos);
}

std::string param(std::string_view value, std::string_view name) {
    std::string low = lower(value);
    size_t at = 0;
    while ((at = low.find(name, at)) != std::string::npos) {
        bool starts = at == 0 || low[at - 1] == ';' || low[at - 1] == ' ' || low[at - 1] == '\t';
        size_t eq = at + name.size();
        while (eq < low.size() && (low[eq] == ' ' || low[eq] == '\t')) ++eq;
        if (!starts || eq >= low.size() || low[eq] != '=') {
            at += name.size();
            continue;
        }
        size_t v = eq + 1;
        while (v < value.size() && (value[v] == ' ' || value[v] == '\t')) ++v;
        if (v < value.size() && value[v] == '"') {
            size_t close = value.find('"', v + 1);
            return std::string(value.substr(v + 1, close == std::string_view::npos ? std::string_view::npos : close - v - 1));
        }
        size_t end = value.find_first_of("; \t\r", v);
        return std::string(value.substr(v, end == std::string_view::npos ? std::string_view::npos : end - v));
    }
    return {};
}

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return std::string(s);
}

std::string convert_entity(std::string_view entity, int depth, bool top);

std::string convert_multipart(std::string_view body, const std::string& boundary, int depth) {
    std::string delimiter = "--" + boundary;
    std::string out;
    size_t pos = 0;
    size_t part_start = std::string_view::npos;  // where the current part's text begins
    while (pos <= body.size()) {
        size_t nl = body.find('\n', pos);
        size_t end = nl == std::string_view::npos ? body.size() : nl + 1;
        std::string_view line = body.substr(pos, end - pos);
        std::string_view content = line.substr(0, line.size() - (!line.empty() && line.back() == '\n' ? 1 : 0));
        bool is_delim = content.substr(0, delimiter.size()) == delimiter;
        if (is_delim) {
            if (part_start != std::string_view::npos) {
                // The LF before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
                std::string_view part = body.substr(part_start, pos - part_start);
                bool lf = !part.empty() && part.back() == '\n';
                if (lf) part.remove_suffix(1);
                out += convert_entity(part, depth + 1, false);
                if (lf) out += '\n';
            } else {
                out += body.substr(0, pos);  // preamble, as is
            }
            out += line;
            if (trim(content.substr(delimiter.size())) == "--") {
                out += body.substr(end);  // epilogue, as is
                return out;
            }
            part_start = end;
        }
        if (end >= body.size()) break;
        pos = end;
    }
    // No closing delimiter: keep what is left as it was.
    out += body.substr(part_start == std::string_view::npos ? 0 : part_start);
    return out;
}

std::string convert_entity(std::string_view entity, int depth, bool top) {
    if (depth > kMaxDepth || !has_8bit(entity)) return std::string(entity);
    std::vector<Header> headers;
    std::string_view body;
    bool had_blank = false;
    split_entity(entity, headers, body, had_blank);
    std::string type, cte;
    bool mime_version = false;
    for (const auto& h : headers) {
        if (h.name == "content-type") type = h.value;
        else if (h.name == "content-transfer-encoding") cte = lower(trim(h.value));
        else if (h.name == "mime-version") mime_version = true;
    }
    std::string media = lower(trim(type.substr(0, type.find(';'))));
    std::string head;
    for (const auto& h : headers) head += h.raw;
    if (media.rfind("multipart/", 0) == 0) {
        std::string boundary = param(type, "boundary");
        if (boundary.empty()) return std::string(entity);
        return head + (had_blank ? "\n" : "") + convert_multipart(body, boundary, depth);
    }
    if (media == "message/rfc822") return head + (had_blank ? "\n" : "") + convert_entity(body, depth + 1, true);
    if (!(cte.empty() || cte == "7bit" || cte == "8bit") || !has_8bit(body)) return std::string(entity);
    std::string out;
    for (const auto& h : headers)
        if (h.name != "content-transfer-encoding") out += h.raw;
    if (top && !mime_version) out += "MIME-Version: 1.0\n";
    out += "Content-Transfer-Encoding: quoted-printable\n\n";
    out += quoted_printable(body);
    return out;
}

}  // namespace

std::string DataEncoder::feed(std::string_view chunk) {
    std::string out;
    out.reserve(chunk.size() + chunk.size() / 32 + 8);
    for (char c : chunk) {
        if (at_line_start_ && c == '.') out += '.';
        if (c == '\n') {
            out += "\r\n";
            at_line_start_ = true;
        } else {
            out += c;
            at_line_start_ = false;
        }
    }
    return out;
}

std::string DataEncoder::finish() {
    std::string out = at_line_start_ ? "" : "\r\n";
    at_line_start_ = true;
    return out + ".\r\n";
}

bool has_8bit(std::string_view text) {
    for (unsigned char c : text)
        if (c & 0x80) return true;
    return false;
}

std::string quoted_printable(std::string_view text) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        bool has_nl = nl != std::string_view::npos;
        std::string_view line = text.substr(pos, (has_nl ? nl : text.size()) - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        size_t width = 0;
        for (size_t i = 0; i < line.size(); ++i) {
            unsigned char c = static_cast<unsigned char>(line[i]);
            bool last = i + 1 == line.size();
            bool plain = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
            // A "." alone at a line start is safe after dot-stuffing; "From "
            // is left alone as Postfix does.
            std::string piece = plain ? std::string(1, static_cast<char>(c))
                                      : std::string{'=', hex[c >> 4], hex[c & 15]};
            if (width + piece.size() > 75) {  // 76 with the soft break's "="
                out += "=\n";
                width = 0;
            }
            out += piece;
            width += piece.size();
        }
        if (has_nl) out += '\n';
        pos = has_nl ? nl + 1 : text.size();
    }
    return out;
}

std::string downgrade_8bit(std::string_view message) { return convert_entity(message, 0, true); }

}  // namespace tern::smtp
