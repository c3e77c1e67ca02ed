// Fuzz target: what a remote SMTP server may send the client (reply lines,
// EHLO keywords), and message bodies through dot-stuffing and the 8BITMIME
// downgrade.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/smtp/client_reply.hpp"
#include "lib/smtp/outbound.hpp"

using namespace tern::smtp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    ReplyReader reader;
    std::string_view rest = input;
    while (!rest.empty()) {
        size_t nl = rest.find('\n');
        auto got = reader.feed(rest.substr(0, nl));
        if (got && *got) {
            const Reply& r = **got;
            if (r.code < 200 || r.code > 599 || r.lines.empty()) std::abort();
            (void)parse_ehlo(r);
            (void)r.text();
        }
        if (nl == std::string_view::npos) break;
        rest.remove_prefix(nl + 1);
    }
    std::string down = downgrade_8bit(input);
    DataEncoder enc;
    std::string wire = enc.feed(down) + "";
    wire += enc.finish();
    if (wire.size() < 3 || wire.compare(wire.size() - 3, 3, ".\r\n") != 0) std::abort();
    return 0;
}
