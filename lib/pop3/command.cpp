// POP3 command line parsing (see command.hpp).
#include "lib/pop3/command.hpp"

#include <array>
#include <string>

namespace tern::pop3 {
namespace {

struct VerbEntry {
    std::string_view name;
    Verb verb;
};

constexpr std::array<VerbEntry, 15> kVerbs = {{
    {"USER", Verb::User}, {"PASS", Verb::Pass}, {"APOP", Verb::Apop}, {"AUTH", Verb::Auth},
    {"STAT", Verb::Stat}, {"LIST", Verb::List}, {"RETR", Verb::Retr}, {"DELE", Verb::Dele},
    {"NOOP", Verb::Noop}, {"RSET", Verb::Rset}, {"QUIT", Verb::Quit}, {"TOP", Verb::Top},
    {"UIDL", Verb::Uidl}, {"CAPA", Verb::Capa}, {"STLS", Verb::Stls},
}};

bool is_letter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

char upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

// Decimal digits only (no sign, no spaces), at most 2^31-1: RFC 1939 numbers.
std::optional<uint32_t> decimal(std::string_view s) {
    if (s.empty() || s.size() > 10) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (v > 0x7fffffffu) return std::nullopt;
    return static_cast<uint32_t>(v);
}

}  // namespace

std::string_view verb_name(Verb verb) {
    for (const auto& e : kVerbs)
        if (e.verb == verb) return e.name;
    return "UNKNOWN";
}

Result<Command> parse_command(std::string_view line) {
    for (char c : line) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) return Error{"command contains control characters"};
    }
    size_t start = line.find_first_not_of(' ');
    if (start == std::string_view::npos) return Error{"empty command"};
    if (start != 0) return Error{"command starts with a space"};
    size_t end = line.find(' ');
    std::string_view keyword = line.substr(0, end);
    Command cmd;
    for (char c : keyword) {
        if (!is_letter(c)) return Error{"unknown command"};
        cmd.keyword.push_back(upper(c));
    }
    if (keyword.size() < 3 || keyword.size() > 4) return Error{"unknown command"};
    for (const auto& e : kVerbs)
        if (e.name == cmd.keyword) cmd.verb = e.verb;

    if (end != std::string_view::npos) cmd.rest = line.substr(end + 1);
    // PASS takes the rest of the line as it is (RFC 1939 7: spaces allowed).
    if (cmd.verb == Verb::Pass) return cmd;
    std::string_view rest = cmd.rest;
    while (!rest.empty()) {
        size_t skip = rest.find_first_not_of(' ');
        if (skip == std::string_view::npos) break;
        rest.remove_prefix(skip);
        size_t len = rest.find(' ');
        std::string_view arg = rest.substr(0, len);
        // AUTH's initial response is base64 of up to 3 KiB (RFC 5034 4).
        if (arg.size() > kMaxArgument && cmd.verb != Verb::Auth)
            return Error{"argument too long (at most " + std::to_string(kMaxArgument) + " characters)"};
        if (cmd.args.size() == kMaxArguments) return Error{"too many arguments"};
        cmd.args.push_back(arg);
        rest.remove_prefix(arg.size());
    }
    return cmd;
}

std::optional<std::string> check_arguments(const Command& cmd) {
    size_t n = cmd.args.size();
    auto syntax = [](std::string_view usage) { return std::string("syntax: ") + std::string(usage); };
    switch (cmd.verb) {
    case Verb::User: if (n != 1) return syntax("USER name"); break;
    case Verb::Pass: if (cmd.rest.empty()) return syntax("PASS password"); break;
    case Verb::Apop: if (n != 2) return syntax("APOP name digest"); break;
    case Verb::Auth: if (n > 2) return syntax("AUTH mechanism [initial-response]"); break;
    case Verb::Stat: if (n != 0) return syntax("STAT"); break;
    case Verb::List: if (n > 1) return syntax("LIST [msg]"); break;
    case Verb::Retr: if (n != 1) return syntax("RETR msg"); break;
    case Verb::Dele: if (n != 1) return syntax("DELE msg"); break;
    case Verb::Noop: if (n != 0) return syntax("NOOP"); break;
    case Verb::Rset: if (n != 0) return syntax("RSET"); break;
    case Verb::Quit: if (n != 0) return syntax("QUIT"); break;
    case Verb::Top: if (n != 2) return syntax("TOP msg lines"); break;
    case Verb::Uidl: if (n > 1) return syntax("UIDL [msg]"); break;
    case Verb::Capa: if (n != 0) return syntax("CAPA"); break;
    case Verb::Stls: if (n != 0) return syntax("STLS"); break;
    case Verb::Unknown: return "unknown command";
    }
    return std::nullopt;
}

std::optional<uint32_t> message_number(std::string_view arg) {
    auto v = decimal(arg);
    if (!v || *v == 0) return std::nullopt;
    return v;
}

std::optional<uint32_t> line_count(std::string_view arg) { return decimal(arg); }

}  // namespace tern::pop3
