// SMTP command line and MAIL/RCPT parameter parsing (see command.hpp).
#include "lib/smtp/command.hpp"

#include <array>
#include <limits>

namespace tern::smtp {
namespace {

bool iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 32);
        if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 32);
        if (x != y) return false;
    }
    return true;
}

bool istarts(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequal(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Digits only, saturating at UINT64_MAX (a size that large exceeds any limit).
bool parse_number(std::string_view s, uint64_t& out) {
    if (s.empty() || s.size() > 40) return false;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        unsigned d = static_cast<unsigned>(c - '0');
        if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) v = std::numeric_limits<uint64_t>::max();
        else v = v * 10 + d;
    }
    out = v;
    return true;
}

// esmtp-value (RFC 5321 4.1.2): %d33-60 / %d62-126, UTF-8 with SMTPUTF8.
bool valid_esmtp_value(std::string_view v, bool utf8) {
    if (v.empty()) return false;
    for (unsigned char c : v) {
        if (c >= 0x80) {
            if (!utf8) return false;
        } else if (c < 33 || c > 126 || c == '=') {
            return false;
        }
    }
    return true;
}

struct Param {
    std::string_view key;
    std::string_view value;
    bool has_value = false;
};

// Calls fn(param) for each space-separated "KEY[=VALUE]"; stops on error.
template <typename Fn>
Status for_each_param(std::string_view rest, bool utf8, Fn fn) {
    size_t i = 0;
    while (i < rest.size()) {
        if (rest[i] == ' ') { ++i; continue; }
        size_t end = rest.find(' ', i);
        if (end == std::string_view::npos) end = rest.size();
        std::string_view word = rest.substr(i, end - i);
        i = end;
        Param p;
        size_t eq = word.find('=');
        p.key = word.substr(0, eq);
        if (eq != std::string_view::npos) {
            p.has_value = true;
            p.value = word.substr(eq + 1);
            if (!valid_esmtp_value(p.value, utf8))
                return Error{"501 5.5.4 Bad parameter value: " + std::string(p.key)};
        }
        if (p.key.empty()) return Error{"501 5.5.4 Bad parameter syntax"};
        for (unsigned char c : p.key)
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                return Error{"501 5.5.4 Bad parameter syntax"};
        Status s = fn(p);
        if (!s) return s;
    }
    return {};
}

Error unsupported(std::string_view key) {
    return Error{"555 5.5.4 Unsupported parameter " + std::string(key)};
}

// "FROM:" / "TO:" then optional spaces (tolerated, like Postfix), then the path.
Result<std::string_view> after_keyword(std::string_view args, std::string_view keyword, std::string_view usage) {
    if (!istarts(args, keyword)) return Error{"501 5.5.4 Syntax: " + std::string(usage)};
    std::string_view rest = args.substr(keyword.size());
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty()) return Error{"501 5.5.4 Syntax: " + std::string(usage)};
    return rest;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;  // RFC 3461: upper-case hex only
}

}  // namespace

Command parse_command(std::string_view line) {
    static constexpr std::array<std::pair<std::string_view, Verb>, 14> verbs{{
        {"HELO", Verb::Helo}, {"EHLO", Verb::Ehlo}, {"MAIL", Verb::Mail}, {"RCPT", Verb::Rcpt},
        {"DATA", Verb::Data}, {"BDAT", Verb::Bdat}, {"RSET", Verb::Rset}, {"NOOP", Verb::Noop},
        {"QUIT", Verb::Quit}, {"HELP", Verb::Help}, {"VRFY", Verb::Vrfy}, {"EXPN", Verb::Expn},
        {"STARTTLS", Verb::Starttls}, {"AUTH", Verb::Auth},
    }};
    Command cmd;
    size_t sp = line.find(' ');
    cmd.name = line.substr(0, sp);
    cmd.args = sp == std::string_view::npos ? std::string_view{} : trim(line.substr(sp + 1));
    for (const auto& [name, verb] : verbs)
        if (iequal(cmd.name, name)) cmd.verb = verb;
    return cmd;
}

std::string_view verb_key(Verb verb) {
    switch (verb) {
    case Verb::Helo: return "helo";
    case Verb::Ehlo: return "ehlo";
    case Verb::Mail: return "mail";
    case Verb::Rcpt: return "rcpt";
    case Verb::Data: return "data";
    case Verb::Bdat: return "bdat";
    case Verb::Rset: return "rset";
    case Verb::Noop: return "noop";
    case Verb::Quit: return "quit";
    case Verb::Help: return "help";
    case Verb::Vrfy: return "vrfy";
    case Verb::Expn: return "expn";
    case Verb::Starttls: return "starttls";
    case Verb::Auth: return "auth";
    case Verb::Unknown: return "unknown";
    }
    return "unknown";
}

std::string_view body_type_name(BodyType type) {
    switch (type) {
    case BodyType::SevenBit: return "7BIT";
    case BodyType::EightBitMime: return "8BITMIME";
    case BodyType::BinaryMime: return "BINARYMIME";
    case BodyType::Unspecified: break;
    }
    return "";
}

Result<MailFrom> parse_mail_from(std::string_view args, const ParameterPolicy& policy) {
    auto rest = after_keyword(args, "FROM:", "MAIL FROM:<address>");
    if (!rest) return rest.error();
    // SMTPUTF8 changes what the path may contain, so look for it first.
    bool utf8 = false;
    for (size_t sp = rest->find(' '); sp != std::string_view::npos; sp = rest->find(' ', sp + 1)) {
        std::string_view word = rest->substr(sp + 1);
        word = word.substr(0, word.find(' '));
        if (policy.smtputf8 && iequal(word, "SMTPUTF8")) utf8 = true;
    }
    address::PathOptions opts;
    opts.allow_null = true;
    opts.allow_utf8 = utf8;
    opts.sender = true;
    size_t used = 0;
    auto path = address::parse_path(*rest, opts, &used);
    if (!path) return path.error();
    MailFrom mail;
    mail.sender = std::move(*path);
    std::string_view params = rest->substr(used);
    if (!params.empty() && params.front() != ' ') return Error{"501 5.5.4 Syntax: MAIL FROM:<address>"};
    bool seen_size = false, seen_body = false, seen_ret = false, seen_envid = false, seen_auth = false;
    Status s = for_each_param(params, utf8, [&](const Param& p) -> Status {
        auto once = [&](bool& seen) -> Status {
            if (seen) return Error{"501 5.5.4 Duplicate parameter " + std::string(p.key)};
            seen = true;
            return {};
        };
        if (iequal(p.key, "SIZE")) {
            if (Status d = once(seen_size); !d) return d;
            uint64_t n = 0;
            if (!p.has_value || !parse_number(p.value, n)) return Error{"501 5.5.4 Bad SIZE parameter"};
            mail.size = n;
        } else if (iequal(p.key, "BODY")) {
            if (Status d = once(seen_body); !d) return d;
            if (!p.has_value) return Error{"501 5.5.4 Bad BODY parameter"};
            if (iequal(p.value, "7BIT")) mail.body = BodyType::SevenBit;
            else if (iequal(p.value, "8BITMIME") && policy.eightbitmime) mail.body = BodyType::EightBitMime;
            else if (iequal(p.value, "BINARYMIME") && policy.binarymime) mail.body = BodyType::BinaryMime;
            else return Error{"501 5.5.4 Unsupported BODY type " + std::string(p.value)};
        } else if (iequal(p.key, "SMTPUTF8") && policy.smtputf8) {
            if (p.has_value) return Error{"501 5.5.4 SMTPUTF8 takes no value"};
            mail.smtputf8 = true;
        } else if (iequal(p.key, "RET") && policy.dsn) {
            if (Status d = once(seen_ret); !d) return d;
            if (p.has_value && iequal(p.value, "FULL")) mail.ret = "FULL";
            else if (p.has_value && iequal(p.value, "HDRS")) mail.ret = "HDRS";
            else return Error{"501 5.5.4 Bad RET parameter"};
        } else if (iequal(p.key, "ENVID") && policy.dsn) {
            if (Status d = once(seen_envid); !d) return d;
            auto v = p.has_value ? xtext_decode(p.value) : Result<std::string>(Error{""});
            if (!v || v->size() > 100) return Error{"501 5.5.4 Bad ENVID parameter"};
            mail.envid = std::move(*v);
        } else if (iequal(p.key, "AUTH") && policy.auth) {
            if (Status d = once(seen_auth); !d) return d;
            if (!p.has_value) return Error{"501 5.5.4 Bad AUTH parameter"};
            if (p.value == "<>") {
                mail.auth = "<>";
            } else {
                auto v = xtext_decode(p.value);
                if (!v) return Error{"501 5.5.4 Bad AUTH parameter"};
                mail.auth = std::move(*v);
            }
        } else {
            return unsupported(p.key);
        }
        return {};
    });
    if (!s) return s.error();
    return mail;
}

Result<RcptTo> parse_rcpt_to(std::string_view args, const ParameterPolicy& policy, bool smtputf8) {
    auto rest = after_keyword(args, "TO:", "RCPT TO:<address>");
    if (!rest) return rest.error();
    address::PathOptions opts;
    opts.allow_null = false;
    opts.allow_postmaster = true;
    opts.allow_utf8 = smtputf8;
    opts.sender = false;
    size_t used = 0;
    auto path = address::parse_path(*rest, opts, &used);
    if (!path) return path.error();
    RcptTo rcpt;
    rcpt.recipient = std::move(*path);
    std::string_view params = rest->substr(used);
    if (!params.empty() && params.front() != ' ') return Error{"501 5.5.4 Syntax: RCPT TO:<address>"};
    bool seen_notify = false, seen_orcpt = false;
    Status s = for_each_param(params, smtputf8, [&](const Param& p) -> Status {
        if (iequal(p.key, "NOTIFY") && policy.dsn) {
            if (seen_notify) return Error{"501 5.5.4 Duplicate parameter NOTIFY"};
            seen_notify = true;
            if (!p.has_value) return Error{"501 5.5.4 Bad NOTIFY parameter"};
            uint8_t flags = 0;
            std::string_view v = p.value;
            while (true) {
                size_t comma = v.find(',');
                std::string_view item = v.substr(0, comma);
                if (iequal(item, "NEVER")) flags |= 8;
                else if (iequal(item, "SUCCESS")) flags |= 1;
                else if (iequal(item, "FAILURE")) flags |= 2;
                else if (iequal(item, "DELAY")) flags |= 4;
                else return Error{"501 5.5.4 Bad NOTIFY parameter"};
                if (comma == std::string_view::npos) break;
                v.remove_prefix(comma + 1);
            }
            // RFC 3461 4.1: NEVER must appear alone.
            if ((flags & 8) && flags != 8) return Error{"501 5.5.4 NOTIFY=NEVER must appear alone"};
            rcpt.notify = flags;
        } else if (iequal(p.key, "ORCPT") && policy.dsn) {
            if (seen_orcpt) return Error{"501 5.5.4 Duplicate parameter ORCPT"};
            seen_orcpt = true;
            size_t semi = p.has_value ? p.value.find(';') : std::string_view::npos;
            if (semi == std::string_view::npos || semi == 0 || semi + 1 == p.value.size())
                return Error{"501 5.5.4 Bad ORCPT parameter"};
            std::string_view type = p.value.substr(0, semi);
            auto addr = xtext_decode(p.value.substr(semi + 1));
            if (!addr) {
                // RFC 6533 utf-8-addr-xtext carries raw UTF-8 and \x{..}; keep it as sent.
                if (!iequal(type, "utf-8")) return Error{"501 5.5.4 Bad ORCPT parameter"};
                rcpt.orcpt = std::string(p.value);
            } else {
                rcpt.orcpt = address::lower_ascii(type) + ";" + *addr;
            }
            if (rcpt.orcpt.size() > 500) return Error{"501 5.5.4 Bad ORCPT parameter"};
        } else {
            return unsupported(p.key);
        }
        return {};
    });
    if (!s) return s.error();
    return rcpt;
}

Result<BdatArgs> parse_bdat(std::string_view args) {
    BdatArgs out;
    size_t sp = args.find(' ');
    std::string_view num = args.substr(0, sp);
    if (!parse_number(num, out.size) || num.size() > 19) return Error{"501 5.5.4 Syntax: BDAT size [LAST]"};
    if (sp != std::string_view::npos) {
        std::string_view rest = trim(args.substr(sp + 1));
        if (!iequal(rest, "LAST")) return Error{"501 5.5.4 Syntax: BDAT size [LAST]"};
        out.last = true;
    }
    return out;
}

Result<std::string> xtext_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c == '+') {
            if (i + 2 >= text.size()) return Error{"bad xtext escape"};
            int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
            if (hi < 0 || lo < 0) return Error{"bad xtext escape"};
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c >= 33 && c <= 126 && c != '=') {
            out.push_back(static_cast<char>(c));
        } else {
            return Error{"bad xtext character"};
        }
    }
    return out;
}

std::string xtext_encode(std::string_view text) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (c >= 33 && c <= 126 && c != '+' && c != '=') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('+');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

}  // namespace tern::smtp
