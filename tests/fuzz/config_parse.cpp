// Fuzz target for tern.conf and services.conf parsing.
//
// The input is split at the first NUL byte: the part before is tern.conf,
// the part after is services.conf (parsed against that config).  Every
// effective value is read back, so expansion runs on hostile values too.
// A crash, hang or sanitizer report is a bug; diagnostics are expected.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lib/config/config.hpp"
#include "lib/config/services.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    size_t nul = input.find('\0');
    std::string_view main_cf = input.substr(0, nul);
    std::string_view services = nul == std::string_view::npos ? input : input.substr(nul + 1);

    using namespace tern::config;
    Config config = Config::parse(main_cf, "tern.conf");
    for (const auto& d : config.diagnostics()) (void)d.to_string();
    for (const auto& [key, value] : config.effective(false)) (void)value;
    if (config.diagnostics().empty()) {
        // Validated values must be readable with their typed getter.
        for (const auto& k : all_keys()) {
            switch (k.kind) {
            case Kind::Int: (void)config.get_int(k.name); break;
            case Kind::Bool: (void)config.get_bool(k.name); break;
            case Kind::Duration: (void)config.get_duration(k.name); break;
            case Kind::Size: (void)config.get_size(k.name); break;
            case Kind::List: (void)config.get_list(k.name); break;
            default: (void)config.get(k.name); break;
            }
        }
    }
    auto parsed = parse_services(services, "services.conf", config);
    if (parsed)
        for (const auto& s : *parsed)
            for (const auto& a : s.listen) (void)a.to_string();
    (void)config.apply_override(main_cf.substr(0, 200));
    return 0;
}
