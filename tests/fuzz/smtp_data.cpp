// Fuzz target: DATA and BDAT content decoding.  Checks invariants that the
// smuggling defence depends on: output never contains CR, decoding does not
// depend on how the input is split, and the terminator is found only at
// CRLF.CRLF.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/smtp/data.hpp"

using namespace tern::smtp;

namespace {

struct Decoded {
    std::string out;
    size_t used;
    bool done;
    DataError error;
    uint64_t size;
};

Decoded run(std::string_view in, size_t step, DataLimits limits) {
    DataDecoder d(limits);
    Decoded r{};
    r.used = 0;
    while (r.used < in.size() && !d.done()) r.used += d.feed(in.substr(r.used, step), r.out);
    r.done = d.done();
    r.error = d.error();
    r.size = d.size();
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    DataLimits limits{size ? static_cast<uint64_t>(data[0]) * 8 : 0, size > 1 ? data[1] : 0u};
    Decoded whole = run(in, in.size() + 1, limits);
    Decoded bytes = run(in, 1, limits);
    Decoded odd = run(in, 7, limits);
    for (const Decoded* d : {&bytes, &odd})
        if (d->out != whole.out || d->used != whole.used || d->done != whole.done || d->error != whole.error ||
            d->size != whole.size)
            std::abort();
    if (whole.out.find('\r') != std::string::npos && whole.error == DataError::None) std::abort();
    if (whole.done) {
        std::string_view consumed = in.substr(0, whole.used);
        bool at_start = consumed == ".\r\n";
        bool ends = consumed.size() >= 5 && consumed.substr(consumed.size() - 5) == "\r\n.\r\n";
        if (!at_start && !ends) std::abort();
    }
    if (limits.max_size && whole.error == DataError::None && whole.out.size() > limits.max_size) std::abort();

    ChunkDecoder a(limits), b(limits);
    std::string oa, ob;
    a.feed(in, oa);
    a.finish();
    for (size_t i = 0; i < in.size(); i += 3) b.feed(in.substr(i, 3), ob);
    b.finish();
    if (oa != ob || a.error() != b.error() || a.size() != b.size()) std::abort();
    if (a.error() == DataError::None && oa.find('\r') != std::string::npos) std::abort();
    return 0;
}
