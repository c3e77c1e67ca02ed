// Fuzz target: remote delivery's table texts (transport_maps and
// smtp_tls_policy_maps lines, transport values, SMTP AUTH credentials).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/tables/credentials.hpp"
#include "lib/tables/domain_map.hpp"

using namespace tern::tables;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto entries = parse_domain_map(text, "fuzz");
    if (entries)
        for (const auto& [key, value] : *entries) {
            if (key.empty() || value.empty()) std::abort();
            auto t = parse_transport(value);
            if (t && t->kind == TransportEntry::Kind::Error && (t->dsn.empty() || t->text.empty())) std::abort();
        }
    (void)parse_transport(text);
    size_t nl = text.find('\n');
    auto c = find_credentials(text, text.substr(0, nl == std::string_view::npos ? 0 : nl));
    if (c && c->user.empty()) std::abort();
    return 0;
}
