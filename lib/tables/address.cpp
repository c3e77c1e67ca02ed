// Address pieces for table lookups: see address.hpp.
#include "lib/tables/address.hpp"

namespace tern::tables {

std::string lowercase(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

AddressParts split_address(std::string_view address) {
    if (address.size() >= 2 && address.front() == '<' && address.back() == '>')
        address = address.substr(1, address.size() - 2);
    AddressParts parts;
    auto at = address.rfind('@');
    if (at == std::string_view::npos) {
        parts.local = std::string(address);
        return parts;
    }
    parts.local = std::string(address.substr(0, at));
    std::string_view domain = address.substr(at + 1);
    while (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
    parts.domain = lowercase(domain);
    return parts;
}

std::string strip_extension(std::string_view local, std::string_view delimiters) {
    if (delimiters.empty()) return std::string(local);
    auto pos = local.find_first_of(delimiters);
    if (pos == std::string_view::npos || pos == 0) return std::string(local);
    return std::string(local.substr(0, pos));
}

std::string extension_of(std::string_view local, std::string_view delimiters) {
    if (delimiters.empty()) return {};
    auto pos = local.find_first_of(delimiters);
    if (pos == std::string_view::npos || pos == 0) return {};
    return std::string(local.substr(pos + 1));
}

}  // namespace tern::tables
