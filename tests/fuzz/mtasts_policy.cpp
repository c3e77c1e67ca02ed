// Fuzz target: MTA-STS TXT records and policy files (lib/mtasts).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/mtasts/policy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto id = tern::mtasts::parse_txt(text);
    if (id && (id->empty() || id->size() > 32)) std::abort();
    auto p = tern::mtasts::parse(text);
    if (p) {
        if (p->max_age < 0 || p->max_age > 31557600) std::abort();
        (void)p->matches(text.substr(0, 64));
    }
    return 0;
}
