// Address lists in To/Cc/Bcc for sendmail -t (see header_recipients.hpp).
#include "lib/maildrop/header_recipients.hpp"

#include <cctype>

namespace tern::maildrop {

namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Finishes one mailbox: the angle address when there was one, else the
// bare text, which must then be a single addr-spec.
void flush(std::string& plain, std::string& angle, bool had_angle, std::vector<std::string>& out,
           std::vector<std::string>* bad) {
    std::string candidate = had_angle ? angle : plain;
    // Folding white space inside an addr-spec is allowed (obs-local-part);
    // white space between words of a display name without <> is not an address.
    std::string addr;
    bool in_quote = false, space_between = false, seen = false, pending_space = false;
    for (size_t i = 0; i < candidate.size(); ++i) {
        char c = candidate[i];
        if (c == '"') in_quote = !in_quote;
        if (!in_quote && is_wsp(c)) {
            pending_space = seen;
            continue;
        }
        if (pending_space && c != '@' && c != '.' && !addr.empty() && addr.back() != '@' && addr.back() != '.')
            space_between = true;
        pending_space = false;
        if (in_quote && c == '\\' && i + 1 < candidate.size()) {
            addr += c;
            c = candidate[++i];
        }
        addr += c;
        seen = true;
    }
    if (had_angle) {
        // "<@route:user@domain>" source routes are obsolete (RFC 5322 4.4).
        size_t colon = addr.find(':');
        if (!addr.empty() && addr[0] == '@' && colon != std::string::npos) addr.erase(0, colon + 1);
    }
    if (!addr.empty()) {
        if (space_between || in_quote || addr.find_first_of("<>()[],;") != std::string::npos ||
            addr.front() == '@' || addr.back() == '@') {
            if (bad) bad->push_back(candidate.substr(0, 200));
        } else {
            out.push_back(addr);
        }
    }
    plain.clear();
    angle.clear();
}

}  // namespace

std::vector<std::string> parse_address_list(std::string_view value, std::vector<std::string>* bad) {
    std::vector<std::string> out;
    std::string plain, angle;
    bool had_angle = false, in_angle = false;
    size_t i = 0;
    const size_t n = value.size();
    while (i < n) {
        char c = value[i];
        if (c == '"') {
            // quoted-string: copied with its quotes (it may be a local part)
            std::string q = "\"";
            ++i;
            while (i < n && value[i] != '"') {
                if (value[i] == '\\' && i + 1 < n) q += value[i++];
                q += value[i++];
            }
            if (i >= n) {
                // Unterminated: not an address, whatever it looks like.
                if (bad) bad->push_back(q.substr(0, 200));
                plain.clear();
                angle.clear();
                had_angle = false;
                in_angle = false;
                continue;
            }
            q += '"';
            ++i;
            (in_angle ? angle : plain) += q;
            continue;
        }
        if (c == '(') {
            // comment, possibly nested: dropped
            int depth = 0;
            while (i < n) {
                if (value[i] == '\\') {
                    i += 2;
                    continue;
                }
                if (value[i] == '(') ++depth;
                if (value[i] == ')' && --depth == 0) {
                    ++i;
                    break;
                }
                ++i;
            }
            (in_angle ? angle : plain) += ' ';
            continue;
        }
        if (in_angle) {
            if (c == '>') in_angle = false;
            else angle += c;
            ++i;
            continue;
        }
        if (c == '<') {
            in_angle = true;
            had_angle = true;
            angle.clear();
            plain.clear();  // the display name
        } else if (c == ',' || c == ';') {
            flush(plain, angle, had_angle, out, bad);
            had_angle = false;
        } else if (c == ':') {
            plain.clear();  // a group's display name
        } else if (c == '>') {
            if (bad) bad->push_back(">");
        } else if (!had_angle) {
            plain += c;
        }
        ++i;
    }
    flush(plain, angle, had_angle, out, bad);
    return out;
}

HeaderRecipients extract_header_recipients(std::string_view header_section) {
    struct Field {
        std::string name;  // lower-case
        std::string_view text;  // whole field including continuation lines
    };
    std::vector<Field> fields;
    size_t pos = 0;
    while (pos < header_section.size()) {
        size_t start = pos;
        size_t nl = header_section.find('\n', pos);
        size_t end = nl == std::string_view::npos ? header_section.size() : nl + 1;
        // continuation lines belong to the field before
        while (end < header_section.size() && (header_section[end] == ' ' || header_section[end] == '\t')) {
            size_t next = header_section.find('\n', end);
            end = next == std::string_view::npos ? header_section.size() : next + 1;
        }
        std::string_view text = header_section.substr(start, end - start);
        size_t colon = text.find(':');
        std::string name = colon == std::string_view::npos ? "" : lower(text.substr(0, colon));
        while (!name.empty() && is_wsp(name.back())) name.pop_back();
        fields.push_back({name, text});
        pos = end;
    }
    bool resent = false;
    for (const auto& f : fields)
        if (f.name == "resent-to" || f.name == "resent-cc" || f.name == "resent-bcc") resent = true;

    HeaderRecipients result;
    for (const auto& f : fields) {
        bool wanted = resent ? (f.name == "resent-to" || f.name == "resent-cc" || f.name == "resent-bcc")
                             : (f.name == "to" || f.name == "cc" || f.name == "bcc");
        if (wanted) {
            auto list = parse_address_list(f.text.substr(f.text.find(':') + 1), &result.bad);
            result.recipients.insert(result.recipients.end(), list.begin(), list.end());
        }
        if (f.name == "bcc" || f.name == "resent-bcc") continue;
        result.headers += f.text;
    }
    return result;
}

}  // namespace tern::maildrop
