// ASCII case-insensitive comparison for mechanism and scheme names.
#pragma once

#include <cctype>
#include <string_view>

namespace tern::auth {

inline bool ascii_iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

}  // namespace tern::auth
