// Raw DEFLATE streams through zlib: see deflate.hpp.
#include "lib/compress/deflate.hpp"

#include <zlib.h>

#include <algorithm>

namespace tern::compress {
namespace {

constexpr size_t kChunk = 16 * 1024;  // output grown by this much per deflate()/inflate() call

std::string zlib_error(const z_stream& z, int rc) {
    if (z.msg) return z.msg;
    return "zlib error " + std::to_string(rc);
}

}  // namespace

struct Deflater::State {
    z_stream z{};
    bool broken = false;
    ~State() { deflateEnd(&z); }
};

Deflater::Deflater(std::unique_ptr<State> state) : state_(std::move(state)) {}
Deflater::Deflater(Deflater&&) noexcept = default;
Deflater& Deflater::operator=(Deflater&&) noexcept = default;
Deflater::~Deflater() = default;

Result<Deflater> Deflater::create(const DeflateSettings& s) {
    auto state = std::make_unique<State>();
    // Negative window bits: raw deflate, no zlib header or checksum.
    int rc = deflateInit2(&state->z, s.level, Z_DEFLATED, -std::clamp(s.window_bits, 9, 15),
                          std::clamp(s.mem_level, 1, 9), Z_DEFAULT_STRATEGY);
    if (rc != Z_OK) {
        std::string why = zlib_error(state->z, rc);
        state.release();  // nothing to end: init failed
        return make_error("deflateInit2: " + why);
    }
    return Deflater(std::move(state));
}

Status Deflater::compress(std::string_view data, std::string& out, bool sync_flush) {
    z_stream& z = state_->z;
    if (state_->broken) return make_error("compressor is unusable after an earlier error");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    int flush = sync_flush ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    while (true) {
        size_t had = out.size();
        out.resize(had + kChunk);
        z.next_out = reinterpret_cast<Bytef*>(out.data() + had);
        z.avail_out = static_cast<uInt>(kChunk);
        int rc = deflate(&z, flush);
        out.resize(had + (kChunk - z.avail_out));
        if (rc == Z_STREAM_ERROR) {
            state_->broken = true;
            return make_error("deflate: " + zlib_error(z, rc));
        }
        // Done when all input is taken and zlib did not fill the output
        // (a full output may mean more flush output is pending).
        if (z.avail_in == 0 && z.avail_out != 0) break;
    }
    return {};
}

struct Inflater::State {
    z_stream z{};
    bool broken = false;
    ~State() { inflateEnd(&z); }
};

Inflater::Inflater(std::unique_ptr<State> state) : state_(std::move(state)) {}
Inflater::Inflater(Inflater&&) noexcept = default;
Inflater& Inflater::operator=(Inflater&&) noexcept = default;
Inflater::~Inflater() = default;

Result<Inflater> Inflater::create() {
    auto state = std::make_unique<State>();
    int rc = inflateInit2(&state->z, -15);
    if (rc != Z_OK) {
        std::string why = zlib_error(state->z, rc);
        state.release();
        return make_error("inflateInit2: " + why);
    }
    return Inflater(std::move(state));
}

Status Inflater::inflate(std::string_view data, size_t& consumed, std::string& out, size_t max_out) {
    z_stream& z = state_->z;
    consumed = 0;
    if (state_->broken) return make_error("decompressor is unusable after an earlier error");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    size_t produced = 0;
    while (z.avail_in > 0 && produced < max_out) {
        size_t room = std::min(kChunk, max_out - produced);
        size_t had = out.size();
        out.resize(had + room);
        z.next_out = reinterpret_cast<Bytef*>(out.data() + had);
        z.avail_out = static_cast<uInt>(room);
        int rc = ::inflate(&z, Z_SYNC_FLUSH);
        size_t got = room - z.avail_out;
        out.resize(had + got);
        produced += got;
        if (rc == Z_STREAM_END) {
            state_->broken = true;
            consumed = data.size() - z.avail_in;
            return make_error("the compressed stream ended");
        }
        if (rc == Z_BUF_ERROR) break;  // no progress possible: needs more input
        if (rc != Z_OK) {
            state_->broken = true;
            consumed = data.size() - z.avail_in;
            return make_error("inflate: " + zlib_error(z, rc));
        }
    }
    consumed = data.size() - z.avail_in;
    return {};
}

}  // namespace tern::compress
