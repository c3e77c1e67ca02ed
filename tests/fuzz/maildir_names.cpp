// Fuzz target: Maildir message file names (lib/mailstore/maildir_names):
// parse_message_name() against a byte-by-byte reference of its rule, and
// message_file_name() giving back a name that parses to the same base and
// flags.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "lib/mailstore/maildir_names.hpp"

using namespace tern::mailstore;

namespace {

// The rule, one byte at a time: the first ":2," ends the base; the first
// ",S=" and ",W=" of the base give the sizes (nullopt without digits).
std::optional<uint64_t> reference_number(std::string_view base, size_t at) {
    uint64_t n = 0;
    size_t digits = 0;
    for (size_t i = at + 3; i < base.size() && base[i] >= '0' && base[i] <= '9' && digits < 19; ++i, ++digits)
        n = n * 10 + static_cast<uint64_t>(base[i] - '0');
    if (digits == 0) return std::nullopt;
    return n;
}

MessageName reference(std::string_view name) {
    MessageName m;
    m.base = name;
    for (size_t i = 0; i + 2 < name.size(); ++i)
        if (name[i] == ':' && name[i + 1] == '2' && name[i + 2] == ',') {
            m.base = name.substr(0, i);
            m.letters = name.substr(i + 3);
            m.has_info = true;
            break;
        }
    bool s = false, w = false;
    for (size_t i = 0; i + 2 < m.base.size(); ++i) {
        if (m.base[i] != ',' || m.base[i + 2] != '=') continue;
        if (m.base[i + 1] == 'S' && !s) s = true, m.size = reference_number(m.base, i);
        if (m.base[i + 1] == 'W' && !w) w = true, m.crlf_size = reference_number(m.base, i);
    }
    return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view name(reinterpret_cast<const char*>(data), size);
    MessageName got = parse_message_name(name), want = reference(name);
    if (got.base != want.base || got.letters != want.letters || got.has_info != want.has_info) std::abort();
    if (got.size != want.size || got.crlf_size != want.crlf_size) std::abort();
    if (got.base.data() != name.data()) std::abort();
    if (got.has_info && got.letters.data() + got.letters.size() != name.data() + name.size()) std::abort();
    // A rename for a flag change keeps the base and the flags it was given.
    if (got.base.find(":2,") == std::string_view::npos) {
        uint8_t flags = flags_from_letters(got.letters);
        std::string renamed = message_file_name(got.base, flags, got.letters);
        MessageName again = parse_message_name(renamed);
        if (again.base != got.base || !again.has_info || flags_from_letters(again.letters) != flags) std::abort();
    }
    return 0;
}
