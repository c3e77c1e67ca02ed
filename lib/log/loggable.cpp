// Log-safe names: see loggable.hpp.
#include "lib/log/loggable.hpp"

namespace tern::log {

std::string loggable(std::string_view text, size_t max_bytes) {
    std::string out;
    for (char c : text.substr(0, max_bytes)) {
        auto u = static_cast<unsigned char>(c);
        out.push_back(u < 0x20 || u >= 0x7f || c == '<' || c == '>' ? '?' : c);
    }
    return out;
}

}  // namespace tern::log
