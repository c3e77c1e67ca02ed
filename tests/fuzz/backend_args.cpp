// Fuzz target: a backend's command line (lib/usersession/backend_args).
// The input, split at NUL bytes, is the argument vector; an accepted one
// must survive the round trip through to_args() unchanged.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "lib/usersession/backend_args.hpp"

using tern::usersession::BackendArgs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<std::string> args(1);
    for (size_t i = 0; i < size && args.size() < 64; ++i) {
        if (data[i] == 0) args.emplace_back();
        else args.back().push_back(static_cast<char>(data[i]));
    }
    for (bool need_tag : {false, true}) {
        auto b = BackendArgs::parse(args, need_tag);
        if (!b) continue;
        if (b->user.empty() || b->mail.empty() || (need_tag && b->tag.empty())) std::abort();
        (void)b->peer();
        auto again = BackendArgs::parse(b->to_args(), need_tag);
        if (!again || again->user != b->user || again->mail != b->mail || again->client_ip != b->client_ip ||
            again->tag != b->tag || again->tls != b->tls)
            std::abort();
    }
    return 0;
}
