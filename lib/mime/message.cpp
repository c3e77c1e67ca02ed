// MIME structure parser: see message.hpp.
#include "lib/mime/message.hpp"

#include <cstring>

namespace tern::mime {
namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

std::string lower_trim(std::string_view s) {
    std::string out;
    for (char c : s)
        if (!is_wsp(c) && c != '\r' && c != '\n') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

uint64_t count_lines(std::string_view body) {
    uint64_t n = 0;
    const char* p = body.data();
    const char* end = p + body.size();
    while (p < end) {
        const void* nl = std::memchr(p, '\n', static_cast<size_t>(end - p));
        if (!nl) break;
        ++n;
        p = static_cast<const char*>(nl) + 1;
    }
    if (!body.empty() && body.back() != '\n') ++n;
    return n;
}

// Whether line (without its line end) is "--boundary" or "--boundary--",
// optionally followed by white space (RFC 2046 5.1.1 transport padding).
// Returns 0 = no, 1 = delimiter, 2 = close delimiter.
int delimiter_kind(std::string_view line, std::string_view boundary) {
    if (line.size() < boundary.size() + 2 || line[0] != '-' || line[1] != '-') return 0;
    if (line.compare(2, boundary.size(), boundary) != 0) return 0;
    std::string_view rest = line.substr(2 + boundary.size());
    int kind = 1;
    if (rest.size() >= 2 && rest[0] == '-' && rest[1] == '-') {
        kind = 2;
        rest.remove_prefix(2);
    }
    for (char c : rest)
        if (!is_wsp(c) && c != '\r') return 0;
    return kind;
}

struct Parser {
    std::string_view data;

    void entity(Part& p, size_t begin, size_t end, int depth, bool digest_child) {
        p.header_begin = begin;
        HeaderBlock hb = parse_header(data.substr(begin, end - begin));
        p.body_begin = begin + hb.end;
        p.body_end = end;
        p.header_crlf_size = crlf_size(data.substr(begin, p.body_begin - begin));
        std::string_view body = data.substr(p.body_begin, p.body_end - p.body_begin);
        p.body_crlf_size = crlf_size(body);
        p.body_lines = count_lines(body);

        if (digest_child) {
            p.type = "message";
            p.subtype = "rfc822";
        }
        for (const auto& f : hb.fields) {
            if (f.name.size() < 8 || !iequals(f.name.substr(0, 8), "content-")) continue;
            std::string_view n = f.name.substr(8);
            if (iequals(n, "type")) {
                if (p.content_type_present) continue;  // the first one counts
                ContentValue cv = parse_content_value(f.value);
                size_t slash = cv.value.find('/');
                if (slash == std::string::npos || slash == 0 || slash + 1 == cv.value.size()) {
                    // RFC 2045 5.2: an unusable Content-Type means text/plain; charset=us-ascii.
                    p.type = "text";
                    p.subtype = "plain";
                    p.params.clear();
                    continue;
                }
                p.content_type_present = true;
                p.type = cv.value.substr(0, slash);
                p.subtype = cv.value.substr(slash + 1);
                p.params = std::move(cv.params);
            } else if (iequals(n, "transfer-encoding")) {
                p.encoding = lower_trim(unfold(f.value));
            } else if (iequals(n, "id")) {
                p.id = unfold(f.value);
            } else if (iequals(n, "description")) {
                p.description = unfold(f.value);
            } else if (iequals(n, "md5")) {
                p.md5 = unfold(f.value);
            } else if (iequals(n, "location")) {
                p.location = unfold(f.value);
            } else if (iequals(n, "disposition")) {
                ContentValue cv = parse_content_value(f.value);
                if (cv.value.empty()) continue;
                p.disposition = std::move(cv.value);
                p.disposition_params = std::move(cv.params);
            } else if (iequals(n, "language")) {
                std::string v = unfold(f.value);
                size_t start = 0;
                while (start <= v.size()) {
                    size_t comma = v.find(',', start);
                    if (comma == std::string::npos) comma = v.size();
                    std::string_view tag = std::string_view(v).substr(start, comma - start);
                    while (!tag.empty() && is_wsp(tag.front())) tag.remove_prefix(1);
                    while (!tag.empty() && is_wsp(tag.back())) tag.remove_suffix(1);
                    if (!tag.empty()) p.languages.emplace_back(tag);
                    start = comma + 1;
                }
            }
        }

        if (depth >= kMaxDepth) return;
        if (p.is_multipart()) {
            multipart(p, depth);
        } else if (p.is_message() && (p.encoding.empty() || p.encoding == "7bit" || p.encoding == "8bit" ||
                                      p.encoding == "binary")) {
            Part child;
            entity(child, p.body_begin, p.body_end, depth + 1, false);
            p.children.push_back(std::move(child));
        }
    }

    void multipart(Part& p, int depth) {
        const Param* b = nullptr;
        for (const auto& param : p.params)
            if (iequals(param.name, "boundary")) b = &param;
        std::string boundary = b ? b->value : std::string();
        bool digest = p.subtype == "digest";
        size_t part_begin = std::string::npos;
        size_t pos = p.body_begin;
        bool closed = false;
        if (!boundary.empty() && boundary.size() <= 200) {
            while (pos < p.body_end) {
                const void* nl = std::memchr(data.data() + pos, '\n', p.body_end - pos);
                size_t line_end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - data.data()) : p.body_end;
                size_t next = nl ? line_end + 1 : p.body_end;
                int kind = 0;
                if (data[pos] == '-') kind = delimiter_kind(data.substr(pos, line_end - pos), boundary);
                if (kind != 0) {
                    if (part_begin != std::string::npos) {
                        // The line end before the delimiter belongs to it.
                        size_t end = pos;
                        if (end > part_begin && data[end - 1] == '\n') {
                            --end;
                            if (end > part_begin && data[end - 1] == '\r') --end;
                        }
                        add_child(p, part_begin, end, depth, digest);
                    }
                    part_begin = next;
                    if (kind == 2) {
                        closed = true;
                        break;
                    }
                }
                pos = next;
            }
        }
        if (!closed && part_begin != std::string::npos) {
            // No close delimiter: the last part runs to the end.
            add_child(p, std::min(part_begin, p.body_end), p.body_end, depth, digest);
        }
        if (p.children.empty()) {
            // No delimiter at all: IMAP needs at least one part; an empty text/plain one.
            Part empty;
            empty.header_begin = empty.body_begin = empty.body_end = p.body_end;
            p.children.push_back(std::move(empty));
        }
    }

    void add_child(Part& p, size_t begin, size_t end, int depth, bool digest) {
        Part child;
        entity(child, begin, end, depth + 1, digest);
        p.children.push_back(std::move(child));
    }
};

}  // namespace

uint64_t crlf_size(std::string_view data) {
    uint64_t n = data.size();
    const char* base = data.data();
    const char* p = base;
    const char* end = base + data.size();
    while (p < end) {
        const void* nl = std::memchr(p, '\n', static_cast<size_t>(end - p));
        if (!nl) break;
        const char* q = static_cast<const char*>(nl);
        if (q == base || q[-1] != '\r') ++n;
        p = q + 1;
    }
    return n;
}

Part parse_message(std::string_view data) {
    Part root;
    Parser parser{data};
    parser.entity(root, 0, data.size(), 0, false);
    return root;
}

}  // namespace tern::mime
