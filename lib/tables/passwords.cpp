// The password file beside the users file: see passwords.hpp.
#include "lib/tables/passwords.hpp"

#include <unordered_map>

namespace tern::tables {

PasswordMerge merge_passwords(std::string_view users_text, std::string_view users_name,
                              std::string_view passwd_text, std::string_view passwd_name) {
    PasswordMerge out;
    auto users = parse_users(users_text, users_name);
    auto hashes = parse_users(passwd_text, passwd_name);
    out.diagnostics = std::move(users.diagnostics);
    out.diagnostics.insert(out.diagnostics.end(), hashes.diagnostics.begin(), hashes.diagnostics.end());
    std::unordered_map<std::string, std::string> by_address;
    for (auto& h : hashes.users) by_address.emplace(h.address, std::move(h.password));
    for (auto& u : users.users) {
        auto it = by_address.find(u.address);
        if (it != by_address.end()) {
            u.password = std::move(it->second);
            by_address.erase(it);
        } else if (!u.password.empty()) {
            ++out.legacy;
        }
    }
    for (const auto& h : hashes.users)
        if (by_address.count(h.address))
            out.diagnostics.push_back(std::string(passwd_name) + ":" + std::to_string(h.line) + ": '" + h.address +
                                      "' is not in " + std::string(users_name) + ": ignored");
    out.users = std::move(users.users);
    return out;
}

}  // namespace tern::tables
