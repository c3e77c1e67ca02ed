// Fuzz target: lib/compress's Inflater (what imapd runs on a COMPRESS
// DEFLATE client's bytes) on arbitrary input, fed in two pieces with a
// bounded output per call; and a Deflater round trip of the same bytes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/compress/deflate.hpp"

using namespace tern::compress;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto in = Inflater::create();
    if (!in) std::abort();
    size_t cut = size ? data[0] % size : 0;
    size_t step = 1 + (size ? data[size - 1] : 0) * 64;
    std::string out;
    for (std::string_view piece : {input.substr(0, cut), input.substr(cut)}) {
        for (int guard = 0; !piece.empty(); ++guard) {
            if (guard > 1000000) std::abort();
            size_t used = 0, before = out.size();
            auto s = in->inflate(piece, used, out, step);
            if (used > piece.size() || out.size() - before > step) std::abort();
            if (!s) return 0;  // corrupt: refused, and nothing more to do
            piece.remove_prefix(used);
            if (used == 0 && out.size() == before) break;
            if (out.size() > (1u << 24)) return 0;
        }
    }

    // Whatever the bytes, deflate + inflate gives them back.
    auto d = Deflater::create(kSmallWindow);
    auto back = Inflater::create();
    if (!d || !back) std::abort();
    std::string wire, plain;
    if (!d->compress(input.substr(0, cut), wire) || !d->compress(input.substr(cut), wire, true)) std::abort();
    size_t used = 0;
    if (!back->inflate(wire, used, plain, size + 1) || used != wire.size() || plain != input) std::abort();
    return 0;
}
