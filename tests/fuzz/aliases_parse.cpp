// Fuzz target: the aliases(5), .forward/:include:, users-file, password-file
// and domain-list parsers must accept or reject any bytes without crashing, and what they
// accept must keep the invariants the compiled tables rely on (names and
// targets never empty, never holding a newline, which separates targets in
// the compiled value; line numbers inside the input).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/tables/aliases.hpp"
#include "lib/tables/domains.hpp"
#include "lib/tables/passwords.hpp"
#include "lib/tables/users.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    size_t lines = 1;
    for (char c : input) lines += c == '\n';

    auto aliases = tern::tables::parse_aliases(input, "fuzz");
    for (const auto& e : aliases.entries) {
        if (e.name.empty() || e.name.find('\n') != std::string::npos) std::abort();
        if (e.line < 1 || static_cast<size_t>(e.line) > lines) std::abort();
        if (e.targets.empty()) std::abort();
        for (const auto& t : e.targets) {
            if (t.empty() || t.find('\n') != std::string::npos) std::abort();
            auto target = tern::tables::classify_target(t);
            if (target.kind == tern::tables::TargetKind::Include && target.value.empty()) std::abort();
        }
    }
    for (const auto& t : tern::tables::parse_target_list(input))
        if (t.empty() || t.find('\n') != std::string::npos) std::abort();

    auto users = tern::tables::parse_users(input, "fuzz");
    for (const auto& u : users.users)
        if (u.address.find('@') == std::string::npos || u.address.find('\n') != std::string::npos) std::abort();

    // The users file joined with a password file (the input's two halves):
    // the same users, and no user without a line in the users file.
    auto half = input.size() / 2;
    auto merged = tern::tables::merge_passwords(input.substr(0, half), "users", input.substr(half), "passwd");
    if (merged.users.size() != tern::tables::parse_users(input.substr(0, half), "users").users.size()) std::abort();
    if (merged.legacy > merged.users.size()) std::abort();

    for (const auto& d : tern::tables::parse_domain_list(input, "fuzz"))
        if (d.empty() || d.find_first_of(" \t\n/@") != std::string::npos) std::abort();
    return 0;
}
