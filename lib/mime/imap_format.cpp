// ENVELOPE / BODY / BODYSTRUCTURE strings: see imap_format.hpp.
#include "lib/mime/imap_format.hpp"

#include <cctype>

namespace tern::mime {
namespace {

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

void append_optional(std::string& out, const std::optional<std::string>& s) {
    if (s) append_string(out, *s);
    else out += "NIL";
}

void append_params(std::string& out, const std::vector<Param>& params) {
    if (params.empty()) {
        out += "NIL";
        return;
    }
    out += '(';
    for (size_t i = 0; i < params.size(); ++i) {
        if (i) out += ' ';
        append_string(out, params[i].name);
        out += ' ';
        append_string(out, params[i].value);
    }
    out += ')';
}

// RFC 9051 7.5.2: NIL when the field is absent or holds no address.
void append_addresses(std::string& out, const HeaderBlock& h, std::string_view field, std::string_view fallback = {}) {
    auto v = h.get(field);
    std::vector<Address> list;
    if (v) list = parse_address_list(*v);
    if (list.empty() && !fallback.empty()) {
        if (auto f = h.get(fallback)) list = parse_address_list(*f);
    }
    if (list.empty()) {
        out += "NIL";
        return;
    }
    out += '(';
    for (const auto& a : list) {
        out += '(';
        if (a.group_end) {
            out += "NIL NIL NIL NIL";
        } else if (a.group_start) {
            out += "NIL NIL ";
            append_optional(out, a.mailbox);
            out += " NIL";
        } else {
            if (a.name) append_nstring(out, *a.name);
            else out += "NIL";
            out += ' ';
            append_optional(out, a.route);
            out += ' ';
            append_optional(out, a.mailbox);
            out += ' ';
            append_optional(out, a.host);
        }
        out += ')';
    }
    out += ')';
}

void append_envelope(std::string& out, const Part& message, std::string_view data) {
    HeaderBlock h = parse_header(data.substr(message.header_begin, message.body_begin - message.header_begin));
    auto field = [&](std::string_view name) {
        auto v = h.get(name);
        append_nstring(out, v ? unfold(*v) : std::string());
    };
    out += '(';
    field("date");
    out += ' ';
    field("subject");
    out += ' ';
    append_addresses(out, h, "from");
    out += ' ';
    append_addresses(out, h, "sender", "from");
    out += ' ';
    append_addresses(out, h, "reply-to", "from");
    out += ' ';
    append_addresses(out, h, "to");
    out += ' ';
    append_addresses(out, h, "cc");
    out += ' ';
    append_addresses(out, h, "bcc");
    out += ' ';
    field("in-reply-to");
    out += ' ';
    field("message-id");
    out += ')';
}

void append_extension(std::string& out, const Part& p) {
    out += ' ';
    if (p.disposition.empty()) {
        out += "NIL";
    } else {
        out += '(';
        append_string(out, upper(p.disposition));
        out += ' ';
        append_params(out, p.disposition_params);
        out += ')';
    }
    out += ' ';
    if (p.languages.empty()) {
        out += "NIL";
    } else if (p.languages.size() == 1) {
        append_string(out, p.languages[0]);
    } else {
        out += '(';
        for (size_t i = 0; i < p.languages.size(); ++i) {
            if (i) out += ' ';
            append_string(out, p.languages[i]);
        }
        out += ')';
    }
    out += ' ';
    append_nstring(out, p.location);
}

void append_body(std::string& out, const Part& p, std::string_view data, bool ext) {
    out += '(';
    if (p.is_multipart()) {
        for (const auto& child : p.children) append_body(out, child, data, ext);
        out += ' ';
        append_string(out, upper(p.subtype));
        if (ext) {
            out += ' ';
            append_params(out, p.params);
            append_extension(out, p);
        }
        out += ')';
        return;
    }
    append_string(out, upper(p.type));
    out += ' ';
    append_string(out, upper(p.subtype));
    out += ' ';
    if (!p.content_type_present && p.type == "text" && p.subtype == "plain") {
        out += "(\"CHARSET\" \"US-ASCII\")";  // RFC 2045 5.2 default
    } else {
        append_params(out, p.params);
    }
    out += ' ';
    append_nstring(out, p.id);
    out += ' ';
    append_nstring(out, p.description);
    out += ' ';
    append_string(out, p.encoding.empty() ? std::string("7BIT") : upper(p.encoding));
    out += ' ';
    out += std::to_string(p.body_crlf_size);
    if (p.type == "text") {
        out += ' ';
        out += std::to_string(p.body_lines);
    } else if (p.type == "message" && p.subtype == "rfc822") {
        out += ' ';
        if (!p.children.empty()) {
            append_envelope(out, p.children[0], data);
            out += ' ';
            append_body(out, p.children[0], data, ext);
        } else {
            // Not parseable as a message (encoded, or nested too deep): the
            // grammar still wants an envelope and a body.
            out += "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)";
        }
        out += ' ';
        out += std::to_string(p.body_lines);
    }
    if (ext) {
        out += ' ';
        append_nstring(out, p.md5);
        append_extension(out, p);
    }
    out += ')';
}

}  // namespace

void append_string(std::string& out, std::string_view s) {
    bool quotable = s.size() < 1024;
    for (unsigned char c : s)
        if (c == 0 || c == '\r' || c == '\n' || c >= 0x80) quotable = false;
    if (!quotable) {
        out += '{';
        out += std::to_string(s.size());
        out += "}\r\n";
        out += s;
        return;
    }
    out += '"';
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
}

void append_nstring(std::string& out, std::string_view s) {
    if (s.empty()) out += "NIL";
    else append_string(out, s);
}

std::string envelope(const Part& message, std::string_view data) {
    std::string out;
    append_envelope(out, message, data);
    return out;
}

std::string bodystructure(const Part& message, std::string_view data, bool extensible) {
    std::string out;
    append_body(out, message, data, extensible);
    return out;
}

}  // namespace tern::mime
