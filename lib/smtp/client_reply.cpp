// SMTP client reply parsing (see client_reply.hpp).
#include "lib/smtp/client_reply.hpp"

#include <charconv>

#include "lib/smtp/reply.hpp"

namespace tern::smtp {

namespace {

constexpr size_t kMaxLines = 100;

// "2.1.5 rest": an RFC 3463 code whose class matches the reply code.
std::string enhanced_of(int code, std::string_view text) {
    size_t end = text.find(' ');
    std::string_view word = text.substr(0, end);
    if (word.size() < 5 || word[0] - '0' != code / 100 || word[1] != '.') return {};
    size_t dots = 0;
    for (size_t i = 1; i < word.size(); ++i) {
        char c = word[i];
        if (c == '.') {
            if (word[i - 1] == '.' || ++dots > 2) return {};
        } else if (c < '0' || c > '9') {
            return {};
        }
    }
    if (dots != 2 || word.back() == '.') return {};
    return std::string(word);
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return out;
}

}  // namespace

std::string Reply::text() const {
    std::string out = std::to_string(code);
    for (const auto& l : lines) {
        out += ' ';
        out += l;
    }
    return out;
}

std::string Reply::dsn() const {
    if (!enhanced.empty()) return enhanced;
    return std::to_string(code / 100) + ".0.0";
}

Result<std::optional<Reply>> ReplyReader::feed(std::string_view line) {
    ReplyLine r;
    if (!parse_reply_line(line, r)) return make_error("malformed reply line from server");
    if (in_reply_ && r.code != partial_.code) return make_error("reply code changed inside a multi-line reply");
    if (!in_reply_) {
        partial_ = Reply();
        partial_.code = r.code;
        partial_.enhanced = enhanced_of(r.code, r.text);
        in_reply_ = true;
    }
    if (partial_.lines.size() >= kMaxLines) return make_error("reply longer than 100 lines");
    partial_.lines.emplace_back(r.text);
    if (!r.last) return std::optional<Reply>();
    in_reply_ = false;
    return std::optional<Reply>(std::move(partial_));
}

Extensions parse_ehlo(const Reply& reply) {
    Extensions e;
    e.esmtp = reply.code == 250;
    if (!e.esmtp) return e;
    for (size_t i = 1; i < reply.lines.size(); ++i) {
        std::string line = upper(reply.lines[i]);
        std::string_view v(line);
        std::string_view word = v.substr(0, v.find(' '));
        std::string_view rest = word.size() < v.size() ? v.substr(word.size() + 1) : std::string_view();
        if (word == "PIPELINING") e.pipelining = true;
        else if (word == "8BITMIME") e.eightbitmime = true;
        else if (word == "SMTPUTF8") e.smtputf8 = true;
        else if (word == "DSN") e.dsn = true;
        else if (word == "STARTTLS") e.starttls = true;
        else if (word == "CHUNKING") e.chunking = true;
        else if (word == "ENHANCEDSTATUSCODES") e.enhancedstatuscodes = true;
        else if (word == "SIZE") {
            e.size = true;
            uint64_t n = 0;
            auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
            if (ec == std::errc() && p == rest.data() + rest.size()) e.size_limit = n;
        } else if (word == "AUTH") {
            while (!rest.empty()) {
                size_t sp = rest.find(' ');
                if (sp != 0) e.auth.emplace_back(rest.substr(0, sp));
                rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
            }
        }
    }
    return e;
}

}  // namespace tern::smtp
