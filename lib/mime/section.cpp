// Section addressing and CRLF conversion: see section.hpp.
#include "lib/mime/section.hpp"

#include <cctype>
#include <cstring>

#include "lib/mime/codec.hpp"

namespace tern::mime {
namespace {

bool starts_with_ci(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

}  // namespace

Result<SectionSpec> parse_section(std::string_view text) {
    SectionSpec spec;
    std::string_view s = text;
    // Part numbers: digits separated by dots.
    while (!s.empty() && std::isdigit(static_cast<unsigned char>(s[0]))) {
        uint64_t n = 0;
        size_t i = 0;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
            n = n * 10 + static_cast<uint64_t>(s[i] - '0');
            if (n > 0xffffffffu) return make_error("section part number too large");
            ++i;
        }
        if (n == 0) return make_error("section part number 0");
        spec.path.push_back(static_cast<uint32_t>(n));
        s.remove_prefix(i);
        if (s.empty()) return spec;
        if (s[0] != '.') return make_error("bad section: " + std::string(text));
        s.remove_prefix(1);
        if (s.empty()) return make_error("bad section: " + std::string(text));
    }
    if (s.empty()) return spec;
    if (iequals(s, "HEADER")) {
        spec.text = SectionText::Header;
    } else if (iequals(s, "TEXT")) {
        spec.text = SectionText::Text;
    } else if (iequals(s, "MIME")) {
        if (spec.path.empty()) return make_error("MIME needs a part number");
        spec.text = SectionText::Mime;
    } else if (starts_with_ci(s, "HEADER.FIELDS")) {
        s.remove_prefix(13);
        spec.text = SectionText::HeaderFields;
        if (starts_with_ci(s, ".NOT")) {
            spec.text = SectionText::HeaderFieldsNot;
            s.remove_prefix(4);
        }
        if (s.size() < 3 || s[0] != ' ' || s[1] != '(' || s.back() != ')') return make_error("bad header list");
        s = s.substr(2, s.size() - 3);
        while (!s.empty()) {
            size_t sp = s.find(' ');
            std::string_view name = s.substr(0, sp);
            if (!name.empty()) {
                // astring: a quoted field name is allowed.
                if (name.size() >= 2 && name.front() == '"' && name.back() == '"') name = name.substr(1, name.size() - 2);
                spec.fields.emplace_back(name);
            }
            if (sp == std::string_view::npos) break;
            s.remove_prefix(sp + 1);
        }
        if (spec.fields.empty()) return make_error("empty header list");
    } else {
        return make_error("bad section: " + std::string(text));
    }
    return spec;
}

Result<SectionRange> resolve_section(const Part& message, std::string_view data, const SectionSpec& spec) {
    // Walk the part numbers.  `msg` tracks the message whose HEADER/TEXT a
    // trailing specifier means.
    const Part* part = &message;
    const Part* msg = &message;
    for (size_t i = 0; i < spec.path.size(); ++i) {
        uint32_t n = spec.path[i];
        const Part* container = part;
        if (container->is_message() && !container->children.empty() && container != msg) {
            // Part numbers below a message/rfc822 part address the encapsulated message.
            container = &container->children[0];
        }
        if (container->is_multipart()) {
            if (n > container->children.size()) return make_error("no such part");
            part = &container->children[n - 1];
        } else {
            if (n != 1) return make_error("no such part");
            part = container;  // a non-multipart message's part 1 is its body
        }
    }
    if (!spec.path.empty() && part->is_message() && !part->children.empty()) msg = &part->children[0];
    else if (!spec.path.empty()) msg = nullptr;

    SectionRange r;
    r.part = part;
    switch (spec.text) {
    case SectionText::Full:
        if (spec.path.empty()) {
            r.begin = 0;
            r.end = data.size();
        } else {
            r.begin = part->body_begin;
            r.end = part->body_end;
        }
        break;
    case SectionText::Mime:
        r.begin = part->header_begin;
        r.end = part->body_begin;
        break;
    case SectionText::Header:
    case SectionText::HeaderFields:
    case SectionText::HeaderFieldsNot:
    case SectionText::Text:
        if (!msg) return make_error("section part is not a message");
        if (spec.text == SectionText::Text) {
            r.begin = msg->body_begin;
            r.end = msg->body_end;
        } else {
            r.begin = msg->header_begin;
            r.end = msg->body_begin;
        }
        r.part = msg;
        if (spec.text == SectionText::HeaderFields || spec.text == SectionText::HeaderFieldsNot)
            r.filtered = filter_header(data.substr(r.begin, r.end - r.begin), spec.fields,
                                       spec.text == SectionText::HeaderFieldsNot);
        break;
    }
    return r;
}

void append_crlf(std::string& out, std::string_view data) {
    const char* base = data.data();
    const char* p = base;
    const char* end = base + data.size();
    while (p < end) {
        const void* nl = std::memchr(p, '\n', static_cast<size_t>(end - p));
        if (!nl) {
            out.append(p, static_cast<size_t>(end - p));
            break;
        }
        const char* q = static_cast<const char*>(nl);
        out.append(p, static_cast<size_t>(q - p));
        if (q == base || q[-1] != '\r') out += '\r';
        out += '\n';
        p = q + 1;
    }
}

std::string crlf_slice(std::string_view data, uint64_t offset, uint64_t count) {
    std::string out;
    uint64_t pos = 0;  // position in the CRLF form
    size_t i = 0;
    // Skip whole lines before offset without building them.
    while (i < data.size()) {
        const void* nl = std::memchr(data.data() + i, '\n', data.size() - i);
        size_t line_end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - data.data()) + 1 : data.size();
        uint64_t len = line_end - i;
        if (nl && (line_end - 1 == 0 || data[line_end - 2] != '\r')) ++len;
        if (pos + len > offset) break;
        pos += len;
        i = line_end;
    }
    std::string line;
    while (i < data.size() && out.size() < count) {
        const void* nl = std::memchr(data.data() + i, '\n', data.size() - i);
        size_t line_end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - data.data()) + 1 : data.size();
        line.clear();
        append_crlf(line, data.substr(i, line_end - i));
        // A CR at the end of the previous line-chunk is not an issue: lines split at LF.
        size_t from = pos < offset ? static_cast<size_t>(offset - pos) : 0;
        if (from < line.size()) out.append(line, from, static_cast<size_t>(std::min<uint64_t>(line.size() - from, count - out.size())));
        pos += line.size();
        i = line_end;
    }
    return out;
}

std::string filter_header(std::string_view block, const std::vector<std::string>& fields, bool exclude) {
    HeaderBlock h = parse_header(block);
    std::string out;
    for (const auto& f : h.fields) {
        bool named = false;
        for (const auto& want : fields)
            if (iequals(f.name, want)) named = true;
        if (named == exclude) continue;
        std::string_view raw = f.raw;
        append_crlf(out, raw);
        if (raw.empty() || raw.back() != '\n') out += "\r\n";
    }
    out += "\r\n";
    return out;
}

Result<std::string> decode_transfer(std::string_view data, std::string_view encoding) {
    std::string enc;
    for (char c : encoding)
        if (c != ' ' && c != '\t') enc += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (enc.empty() || enc == "7bit" || enc == "8bit" || enc == "binary") return std::string(data);
    if (enc == "base64") return base64_decode(data);
    if (enc == "quoted-printable") return qp_decode(data);
    return make_error("unknown content-transfer-encoding " + std::string(encoding));
}

}  // namespace tern::mime
