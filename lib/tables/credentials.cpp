// SMTP AUTH client credentials lookup (see credentials.hpp).
#include "lib/tables/credentials.hpp"

#include "lib/tables/address.hpp"

namespace tern::tables {

std::optional<Credentials> find_credentials(std::string_view text, std::string_view nexthop) {
    std::string want = lowercase(nexthop);
    auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        while (!line.empty() && blank(line.back())) line.remove_suffix(1);
        while (!line.empty() && blank(line.front())) line.remove_prefix(1);
        if (line.empty() || line.front() == '#') continue;
        size_t sp = line.find_first_of(" \t");
        if (sp == std::string_view::npos || lowercase(line.substr(0, sp)) != want) continue;
        std::string_view cred = line.substr(sp);
        while (!cred.empty() && blank(cred.front())) cred.remove_prefix(1);
        size_t colon = cred.find(':');
        if (colon == std::string_view::npos || colon == 0) continue;
        return Credentials{std::string(cred.substr(0, colon)), std::string(cred.substr(colon + 1))};
    }
    return std::nullopt;
}

}  // namespace tern::tables
