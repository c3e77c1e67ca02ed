// Fuzz target: the maildrop file parser (and sendmail -t's header
// recipient parser, same input) must reject or accept any bytes
// without crashing, and whatever it accepts must survive a serialize/parse
// round trip unchanged.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/maildrop/header_recipients.hpp"
#include "lib/maildrop/maildrop.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto parsed = tern::maildrop::parse(input);
    if (parsed.ok()) {
        auto again = tern::maildrop::serialize(parsed->envelope, parsed->content);
        if (!again.ok()) std::abort();
        auto back = tern::maildrop::parse(*again);
        if (!back.ok() || back->content != parsed->content || back->envelope.sender != parsed->envelope.sender ||
            back->envelope.recipients != parsed->envelope.recipients || back->envelope.uid != parsed->envelope.uid)
            std::abort();
    }
    (void)tern::maildrop::parse_envelope(input);
    // sendmail -t's header parsing sees the same untrusted bytes.
    (void)tern::maildrop::parse_address_list(input);
    auto h = tern::maildrop::extract_header_recipients(input);
    if (h.headers.size() > input.size()) std::abort();
    if (size >= tern::maildrop::kTrailerSize)
        (void)tern::maildrop::parse_trailer(input.substr(size - tern::maildrop::kTrailerSize));
    return 0;
}
