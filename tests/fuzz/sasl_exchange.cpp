// Fuzz target: the SASL PLAIN/LOGIN server exchange (lib/auth/sasl), fed
// as the wire gives it: a mechanism, an optional initial response, then
// client lines.  Input format: lines separated by '\n'; the first is the
// mechanism, a second starting with "IR " is the initial response.
// Invariants: a finished exchange has a non-empty login and password
// without NULs within kMaxField; decoded bytes survive encode + decode.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "lib/auth/sasl.hpp"

using namespace tern::auth;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> lines;
    size_t pos = 0;
    while (pos <= in.size() && lines.size() < 16) {
        size_t end = in.find('\n', pos);
        if (end == std::string_view::npos) end = in.size();
        lines.push_back(in.substr(pos, end - pos));
        pos = end + 1;
    }
    if (auto bytes = base64_decode(in)) {
        // Non-zero pad bits decode too (RFC 4648 3.5 allows it), so compare bytes.
        auto again = base64_decode(base64_encode(*bytes));
        if (!again || *again != *bytes) std::abort();
    }
    (void)decode_plain(in);

    SaslExchange sasl;
    size_t next = 1;
    std::optional<std::string_view> ir;
    if (lines.size() > 1 && lines[1].substr(0, 3) == "IR ") {
        ir = lines[1].substr(3);
        next = 2;
    }
    SaslStep step = sasl.start(lines[0], ir);
    while (step.state == SaslState::challenge && next < lines.size()) step = sasl.next(lines[next++]);
    if (step.state == SaslState::done) {
        const Credentials& c = sasl.credentials();
        if (c.authcid.empty() || c.password.empty()) std::abort();
        if (c.authcid.size() > kMaxField || c.password.size() > kMaxField) std::abort();
        if (c.authcid.find('\0') != std::string::npos || c.password.find('\0') != std::string::npos) std::abort();
        if (sasl.mechanism() != "PLAIN" && sasl.mechanism() != "LOGIN") std::abort();
    }
    return 0;
}
