// Header fields, RFC 2047 words, parameters and addresses: see header.hpp.
#include "lib/mime/header.hpp"

#include <iconv.h>

#include <algorithm>
#include <cctype>
#include <map>

#include "lib/mime/codec.hpp"

namespace tern::mime {
namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }
char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string lower_copy(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = lower(c);
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (is_wsp(s.front()) || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
    while (!s.empty() && (is_wsp(s.back()) || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
    return s;
}

// Length of the line starting at pos including its LF (or to the end).
size_t line_length(std::string_view data, size_t pos) {
    size_t nl = data.find('\n', pos);
    return nl == std::string_view::npos ? data.size() - pos : nl + 1 - pos;
}

bool blank_line(std::string_view line) { return line == "\n" || line == "\r\n"; }

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

std::optional<std::string_view> HeaderBlock::get(std::string_view name) const {
    for (const auto& f : fields)
        if (iequals(f.name, name)) return f.value;
    return std::nullopt;
}

HeaderBlock parse_header(std::string_view data) {
    HeaderBlock block;
    size_t pos = 0;
    bool continues = false;  // whether a continuation line extends the last field
    while (pos < data.size()) {
        size_t len = line_length(data, pos);
        std::string_view line = data.substr(pos, len);
        if (blank_line(line)) {
            block.has_blank_line = true;
            pos += len;
            break;
        }
        if (is_wsp(line.front())) {
            // A continuation line: belongs to the previous field (or, at the
            // very start, is a malformed line we skip).
            if (!block.fields.empty() && continues) {
                auto& f = block.fields.back();
                f.raw = std::string_view(f.raw.data(), f.raw.size() + len);
                f.value = std::string_view(f.value.data(), static_cast<size_t>(line.data() + len - f.value.data()));
            }
            pos += len;
            continue;
        }
        size_t colon = line.find(':');
        std::string_view name = colon == std::string_view::npos ? std::string_view{} : line.substr(0, colon);
        while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);  // obs "Name :"
        bool valid = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return static_cast<unsigned char>(c) > 32 && static_cast<unsigned char>(c) < 127;
        });
        if (valid) {
            HeaderField f;
            f.name = name;
            f.value = line.substr(colon + 1);
            f.raw = line;
            block.fields.push_back(f);
        }
        continues = valid;
        // A line that is no field at all (no colon, or a body line without a
        // blank line before it) is skipped, as other servers do.
        pos += len;
    }
    block.end = pos;
    // Strip the line end from each field's value.
    for (auto& f : block.fields) {
        while (!f.value.empty() && (f.value.back() == '\n' || f.value.back() == '\r')) f.value.remove_suffix(1);
    }
    return block;
}

std::string unfold(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (size_t i = 0; i < value.size(); ++i) {
        char c = value[i];
        if (c == '\r' && i + 1 < value.size() && value[i + 1] == '\n') continue;
        if (c == '\n') continue;
        out += c;
    }
    std::string_view t = trim(out);
    return std::string(t);
}

std::string to_utf8(std::string_view text, std::string_view charset) {
    std::string cs = lower_copy(trim(charset));
    if (auto star = cs.find('*'); star != std::string::npos) cs.resize(star);  // RFC 2231 language suffix
    if (cs.empty() || cs == "utf-8" || cs == "utf8" || cs == "us-ascii" || cs == "ascii") return std::string(text);
    if (std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }) &&
        cs.rfind("iso-2022", 0) != 0 && cs.rfind("utf-16", 0) != 0 && cs.rfind("utf-7", 0) != 0)
        return std::string(text);
    iconv_t cd = ::iconv_open("UTF-8", cs.c_str());
    if (cd == reinterpret_cast<iconv_t>(-1)) return std::string(text);
    std::string out;
    out.reserve(text.size() * 2);
    char* in = const_cast<char*>(text.data());
    size_t in_left = text.size();
    char buf[1024];
    while (in_left > 0) {
        char* o = buf;
        size_t o_left = sizeof buf;
        size_t rc = ::iconv(cd, &in, &in_left, &o, &o_left);
        out.append(buf, static_cast<size_t>(o - buf));
        if (rc == static_cast<size_t>(-1)) {
            if (errno == E2BIG) continue;
            // Invalid or incomplete input: replacement character, skip a byte.
            out += "\xEF\xBF\xBD";
            if (in_left > 0) {
                ++in;
                --in_left;
            }
            ::iconv(cd, nullptr, nullptr, nullptr, nullptr);
        }
    }
    char* o = buf;
    size_t o_left = sizeof buf;
    ::iconv(cd, nullptr, nullptr, &o, &o_left);
    out.append(buf, static_cast<size_t>(o - buf));
    ::iconv_close(cd);
    return out;
}

namespace {

// Decodes one encoded word at text[pos] ("=?cs?E?data?="); returns its
// length, 0 when it is not a well-formed encoded word.
size_t decode_word(std::string_view text, size_t pos, std::string& out) {
    if (text.compare(pos, 2, "=?") != 0) return 0;
    size_t q1 = text.find('?', pos + 2);
    if (q1 == std::string_view::npos || q1 + 2 >= text.size() || text[q1 + 2] != '?') return 0;
    char enc = lower(text[q1 + 1]);
    if (enc != 'b' && enc != 'q') return 0;
    size_t end = text.find("?=", q1 + 3);
    if (end == std::string_view::npos) return 0;
    std::string_view charset = text.substr(pos + 2, q1 - pos - 2);
    std::string_view payload = text.substr(q1 + 3, end - q1 - 3);
    if (charset.empty() || payload.find_first_of(" \t") != std::string_view::npos) return 0;
    std::string bytes = enc == 'b' ? base64_decode(payload) : qp_decode(payload, true);
    out += to_utf8(bytes, charset);
    return end + 2 - pos;
}

}  // namespace

std::string decode_words(std::string_view value) {
    std::string text = unfold(value);
    if (text.find("=?") == std::string::npos) return text;
    std::string out;
    size_t pos = 0;
    bool last_was_word = false;
    size_t pending_ws = std::string::npos;  // start of white space after a word
    while (pos < text.size()) {
        if (text[pos] == '=' && pos + 1 < text.size() && text[pos + 1] == '?') {
            std::string decoded;
            size_t n = decode_word(text, pos, decoded);
            if (n > 0) {
                // RFC 2047 6.2: white space between adjacent encoded words is dropped.
                if (!(last_was_word && pending_ws != std::string::npos)) {
                    if (pending_ws != std::string::npos) out.append(text, pending_ws, pos - pending_ws);
                }
                out += decoded;
                pos += n;
                last_was_word = true;
                pending_ws = std::string::npos;
                continue;
            }
        }
        if (is_wsp(text[pos])) {
            size_t start = pos;
            while (pos < text.size() && is_wsp(text[pos])) ++pos;
            if (last_was_word) {
                pending_ws = start;
            } else {
                out.append(text, start, pos - start);
            }
            continue;
        }
        if (pending_ws != std::string::npos) {
            out.append(text, pending_ws, pos - pending_ws);
            pending_ws = std::string::npos;
        }
        last_was_word = false;
        out += text[pos++];
    }
    if (pending_ws != std::string::npos) out.append(text, pending_ws, pos - pending_ws);
    return out;
}

// ---- Content-Type style values ----

namespace {

// RFC 2045 tspecials and RFC 5322 comments, for a tolerant value tokenizer.
struct ValueScanner {
    std::string_view s;
    size_t pos = 0;

    void skip_cfws() {
        while (pos < s.size()) {
            char c = s[pos];
            if (is_wsp(c) || c == '\r' || c == '\n') {
                ++pos;
            } else if (c == '(') {
                int depth = 0;
                while (pos < s.size()) {
                    char d = s[pos++];
                    if (d == '\\' && pos < s.size()) ++pos;
                    else if (d == '(') ++depth;
                    else if (d == ')' && --depth == 0) break;
                }
            } else {
                break;
            }
        }
    }
    bool at(char c) {
        skip_cfws();
        return pos < s.size() && s[pos] == c;
    }
    // A token (stops at tspecials / white space) or a quoted string.
    std::string word(bool& quoted, std::string_view stop = "()<>@,;:\\\"/[]?=") {
        skip_cfws();
        quoted = false;
        std::string out;
        if (pos < s.size() && s[pos] == '"') {
            quoted = true;
            ++pos;
            while (pos < s.size() && s[pos] != '"') {
                if (s[pos] == '\\' && pos + 1 < s.size()) ++pos;
                if (s[pos] != '\r' && s[pos] != '\n') out += s[pos];
                ++pos;
            }
            if (pos < s.size()) ++pos;
            return out;
        }
        while (pos < s.size()) {
            char c = s[pos];
            if (static_cast<unsigned char>(c) <= ' ' || stop.find(c) != std::string_view::npos) break;
            out += c;
            ++pos;
        }
        return out;
    }
};

bool attribute_char(unsigned char c) {
    return c > ' ' && c < 127 && std::string_view("*'%()<>@,;:\\\"/[]?=").find(static_cast<char>(c)) == std::string_view::npos;
}

std::string percent_decode(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

// RFC 2231 3: joins name*0, name*1 ... (and name*0*, ...) into one
// parameter; extended ones keep the charset'lang'%XX form under "name*".
std::vector<Param> join_continuations(std::vector<std::pair<std::string, std::string>> raw) {
    struct Pieces {
        std::map<unsigned, std::pair<std::string, bool>> parts;  // index → value, extended
        size_t order = 0;
    };
    std::vector<Param> out;
    std::map<std::string, Pieces> continued;
    std::vector<std::pair<size_t, std::string>> order;  // output slot → continued name
    for (auto& [name, value] : raw) {
        size_t star = name.find('*');
        if (star == std::string::npos) {
            out.push_back({name, value});
            continue;
        }
        std::string base = name.substr(0, star);
        std::string rest = name.substr(star + 1);
        bool extended = !rest.empty() && rest.back() == '*';
        if (extended) rest.pop_back();
        if (rest.empty()) {
            // name*=charset'lang'value: a single extended value.
            out.push_back({base + "*", value});
            continue;
        }
        if (!std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; }) || rest.size() > 6) {
            out.push_back({name, value});
            continue;
        }
        std::string key = lower_copy(base);
        auto it = continued.find(key);
        if (it == continued.end()) {
            it = continued.emplace(key, Pieces{}).first;
            it->second.order = out.size();
            out.push_back({base, ""});  // placeholder, filled below
        }
        it->second.parts.emplace(static_cast<unsigned>(std::stoul(rest)), std::make_pair(value, extended));
    }
    for (auto& [key, pieces] : continued) {
        bool any_extended = false;
        for (auto& [i, p] : pieces.parts) any_extended |= p.second;
        std::string joined;
        unsigned expect = 0;
        for (auto& [i, p] : pieces.parts) {
            if (i != expect++) break;  // RFC 2231 3: a gap ends the value
            if (any_extended && !p.second) {
                static const char hex[] = "0123456789ABCDEF";
                for (unsigned char c : p.first) {
                    if (attribute_char(c)) {
                        joined += static_cast<char>(c);
                    } else {
                        joined += '%';
                        joined += hex[c >> 4];
                        joined += hex[c & 15];
                    }
                }
            } else {
                joined += p.first;
            }
        }
        Param& slot = out[pieces.order];
        if (any_extended) slot.name += "*";
        slot.value = std::move(joined);
    }
    return out;
}

}  // namespace

ContentValue parse_content_value(std::string_view raw) {
    ContentValue cv;
    ValueScanner sc{raw};
    bool quoted = false;
    std::string main = sc.word(quoted, "()<>@,;:\\\"[]?=");
    cv.value = lower_copy(main);
    std::vector<std::pair<std::string, std::string>> params;
    while (sc.pos < raw.size()) {
        if (!sc.at(';')) {
            // Garbage between parameters: skip to the next ';'.
            size_t semi = raw.find(';', sc.pos);
            if (semi == std::string_view::npos) break;
            sc.pos = semi;
        }
        ++sc.pos;
        std::string name = sc.word(quoted);
        if (name.empty() || quoted) continue;
        if (!sc.at('=')) continue;
        ++sc.pos;
        std::string value = sc.word(quoted, "()<>@,;:\\\"[]?= \t");
        if (!quoted) {
            // Tolerate unquoted values with specials up to the next ';' (common in the wild).
            sc.skip_cfws();
            while (sc.pos < raw.size() && raw[sc.pos] != ';' && raw[sc.pos] != '\r' && raw[sc.pos] != '\n' &&
                   raw[sc.pos] != '(') {
                if (!is_wsp(raw[sc.pos])) value += raw[sc.pos];
                ++sc.pos;
            }
        }
        params.emplace_back(std::move(name), std::move(value));
    }
    cv.params = join_continuations(std::move(params));
    return cv;
}

const Param* ContentValue::find(std::string_view name) const {
    for (const auto& p : params)
        if (iequals(p.name, name)) return &p;
    return nullptr;
}

std::optional<std::string> ContentValue::decoded(std::string_view name) const {
    std::string ext = std::string(name) + "*";
    if (const Param* p = find(ext)) {
        size_t q1 = p->value.find('\'');
        size_t q2 = q1 == std::string::npos ? std::string::npos : p->value.find('\'', q1 + 1);
        if (q2 == std::string::npos) return percent_decode(p->value);
        return to_utf8(percent_decode(std::string_view(p->value).substr(q2 + 1)), p->value.substr(0, q1));
    }
    if (const Param* p = find(name)) return decode_words(p->value);
    return std::nullopt;
}

// ---- Address lists (RFC 5322 3.4, obs forms of 4.4) ----

namespace {

struct Token {
    enum Kind { Atom, Quoted, Special, DomainLiteral } kind;
    std::string text;
};

std::vector<Token> tokenize_addresses(std::string_view s) {
    std::vector<Token> out;
    ValueScanner sc{s};
    while (true) {
        sc.skip_cfws();
        if (sc.pos >= s.size()) break;
        char c = s[sc.pos];
        if (c == '"') {
            bool q;
            out.push_back({Token::Quoted, sc.word(q)});
        } else if (c == '[') {
            size_t end = s.find(']', sc.pos);
            if (end == std::string_view::npos) end = s.size() - 1;
            out.push_back({Token::DomainLiteral, std::string(s.substr(sc.pos, end + 1 - sc.pos))});
            sc.pos = end + 1;
        } else if (std::string_view("<>@,;:.").find(c) != std::string_view::npos) {
            out.push_back({Token::Special, std::string(1, c)});
            ++sc.pos;
        } else {
            bool q;
            std::string w = sc.word(q, "()<>@,;:\\\".[]");
            if (w.empty()) {
                ++sc.pos;  // a stray special ('\\', ']'): skip
                continue;
            }
            out.push_back({Token::Atom, std::move(w)});
        }
    }
    return out;
}

struct AddressParser {
    const std::vector<Token>& t;
    size_t i = 0;
    std::vector<Address> out;

    bool special(size_t k, char c) const { return k < t.size() && t[k].kind == Token::Special && t[k].text[0] == c; }

    // Words up to one of the stop specials, as a display phrase / local part.
    std::string phrase_until(std::string_view stops, bool dots_join) {
        std::string s;
        bool prev_dot = false;
        while (i < t.size()) {
            const Token& k = t[i];
            if (k.kind == Token::Special && stops.find(k.text[0]) != std::string_view::npos) break;
            if (k.kind == Token::Special && k.text[0] == '.') {
                s += '.';
                prev_dot = true;
                ++i;
                continue;
            }
            if (k.kind == Token::Special) {  // stray special: skip
                ++i;
                continue;
            }
            if (!s.empty() && !(dots_join && prev_dot)) s += ' ';
            s += k.text;
            prev_dot = false;
            ++i;
        }
        return s;
    }

    std::string domain() {
        std::string d;
        while (i < t.size() && !(t[i].kind == Token::Special && t[i].text[0] != '.')) {
            d += t[i].text;
            ++i;
        }
        return d;
    }

    void angle_addr(std::optional<std::string> name) {
        ++i;  // '<'
        Address a;
        a.name = std::move(name);
        // obs-route: "@a,@b:"
        if (special(i, '@')) {
            std::string route;
            while (special(i, '@') || special(i, ',')) {
                if (special(i, ',')) {
                    route += ',';
                    ++i;
                    continue;
                }
                ++i;
                route += '@' + domain();
            }
            if (special(i, ':')) ++i;
            a.route = route;
        }
        std::string local = phrase_until("@>,;", true);
        std::string host;
        if (special(i, '@')) {
            ++i;
            host = domain();
        }
        while (i < t.size() && !special(i, '>') && !special(i, ',') && !special(i, ';')) ++i;
        if (special(i, '>')) ++i;
        if (local.empty() && host.empty()) return;  // "<>": nothing to report
        a.mailbox = local;
        a.host = host;
        out.push_back(std::move(a));
    }

    void mailbox() {
        size_t start = i;
        std::string words = phrase_until("<@,;:", false);
        if (special(i, '<')) {
            angle_addr(words.empty() ? std::nullopt : std::optional<std::string>(words));
            return;
        }
        // addr-spec: local-part (dots joined without spaces) '@' domain.
        i = start;
        std::string local;
        while (i < t.size() && !(t[i].kind == Token::Special && t[i].text[0] != '.')) {
            local += t[i].text;
            ++i;
        }
        Address a;
        a.mailbox = local;
        a.host = "";
        if (special(i, '@')) {
            ++i;
            a.host = domain();
        }
        if (!local.empty() || !a.host->empty()) out.push_back(std::move(a));
    }

    void parse() {
        size_t guard = 0;
        while (i < t.size() && guard++ < t.size() + 1) {
            if (special(i, ',') || special(i, ';') || special(i, '>')) {
                ++i;
                continue;
            }
            size_t start = i;
            std::string words = phrase_until("<@,;:", false);
            if (special(i, ':')) {
                ++i;
                Address g;
                g.mailbox = words;
                g.group_start = true;
                out.push_back(std::move(g));
                while (i < t.size() && !special(i, ';')) {
                    if (special(i, ',')) {
                        ++i;
                        continue;
                    }
                    size_t before = i;
                    mailbox();
                    if (i == before) ++i;
                }
                if (special(i, ';')) ++i;
                Address end;
                end.group_end = true;
                out.push_back(std::move(end));
                continue;
            }
            i = start;
            size_t before = i;
            mailbox();
            if (i == before) ++i;
        }
    }
};

}  // namespace

std::vector<Address> parse_address_list(std::string_view raw) {
    std::string text = unfold(raw);
    auto tokens = tokenize_addresses(text);
    AddressParser p{tokens, 0, {}};
    p.parse();
    return std::move(p.out);
}

}  // namespace tern::mime
