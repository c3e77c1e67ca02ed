// Fuzz target: RFC 5321 path parsing.  An accepted path must re-parse to
// itself from its canonical form, and never claim more bytes than it got.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/address/address.hpp"

using namespace tern::address;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    for (int mode = 0; mode < 4; ++mode) {
        PathOptions o;
        o.allow_null = mode & 1;
        o.allow_utf8 = mode & 2;
        o.allow_postmaster = true;
        size_t used = 0;
        auto p = parse_path(in, o, &used);
        if (!p) continue;
        if (used > in.size()) std::abort();
        if (p->null()) continue;
        if (p->local.size() > kMaxLocalPart) std::abort();
        if (p->utf8 && !o.allow_utf8) std::abort();
        for (char c : p->domain)
            if (c >= 'A' && c <= 'Z') std::abort();
        auto again = parse_path("<" + p->address + ">", o);
        if (!again || again->address != p->address || again->local != p->local) std::abort();
    }
    auto parts = split_extension(in, "+-");
    if (parts.base.size() + parts.extension.size() + (parts.has_extension ? 1 : 0) != in.size()) std::abort();
    return 0;
}
