// Unit tests for lib/compress: raw deflate round trips with sync flushes,
// the small-window settings, output bounded per inflate call, and corrupt
// or ended streams refused.
#include <catch2/catch.hpp>

#include <zlib.h>

#include <string>

#include "lib/compress/deflate.hpp"

using namespace tern::compress;

namespace {

// Inflates everything, at most `step` bytes of output per call.
std::string inflate_all(Inflater& in, std::string_view wire, size_t step) {
    std::string out;
    for (int guard = 0; !wire.empty() && guard < 1000000; ++guard) {
        size_t used = 0;
        size_t before = out.size();
        REQUIRE(in.inflate(wire, used, out, step).ok());
        CHECK(out.size() - before <= step);
        wire.remove_prefix(used);
        if (used == 0 && out.size() == before) break;
    }
    return out;
}

}  // namespace

TEST_CASE("compress: sync-flushed pieces inflate to exactly what was sent", "[compress]") {
    auto d = Deflater::create(kSmallWindow);
    REQUIRE(d.ok());
    auto i = Inflater::create();
    REQUIRE(i.ok());
    std::string text;
    for (int n = 0; n < 5000; ++n) text += "* " + std::to_string(n) + " FETCH (FLAGS (\\Seen))\r\n";
    // Each response is decodable on its own once flushed.
    std::string all_plain;
    for (size_t pos = 0; pos < text.size(); pos += 7000) {
        std::string piece = text.substr(pos, 7000), wire;
        REQUIRE(d->compress(piece.substr(0, 100), wire).ok());
        REQUIRE(d->compress(piece.substr(100), wire, true).ok());
        REQUIRE(wire.size() >= 4);
        CHECK(wire.substr(wire.size() - 4) == std::string("\0\0\xff\xff", 4));  // empty stored block
        all_plain += inflate_all(*i, wire, 1000);
        CHECK(all_plain == text.substr(0, std::min(text.size(), pos + 7000)));
    }
    CHECK(all_plain == text);
}

TEST_CASE("compress: what zlib's default deflater sends is read, output bounded", "[compress]") {
    std::string text(3 * 1024 * 1024, 'a');  // inflates about 1000:1
    z_stream z{};
    REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string wire(compressBound(text.size()) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(text.data());
    z.avail_in = static_cast<uInt>(text.size());
    z.next_out = reinterpret_cast<Bytef*>(wire.data());
    z.avail_out = static_cast<uInt>(wire.size());
    REQUIRE(deflate(&z, Z_SYNC_FLUSH) == Z_OK);
    wire.resize(wire.size() - z.avail_out);
    deflateEnd(&z);
    CHECK(wire.size() < 10000);
    auto i = Inflater::create();
    REQUIRE(i.ok());
    // 64 KiB at a time, as imapd's filter asks: input is consumed piecemeal.
    size_t used = 0;
    std::string out;
    REQUIRE(i->inflate(wire, used, out, 64 * 1024).ok());
    CHECK(out.size() == 64 * 1024);
    CHECK(used < wire.size());
    out += inflate_all(*i, std::string_view(wire).substr(used), 64 * 1024);
    CHECK(out == text);
}

TEST_CASE("compress: corrupt input and a finished stream are errors, then stay errors", "[compress]") {
    auto i = Inflater::create();
    REQUIRE(i.ok());
    size_t used = 0;
    std::string out;
    auto bad = i->inflate(std::string(16, '\xff'), used, out, 1024);  // reserved block type 3
    REQUIRE_FALSE(bad.ok());
    CHECK(out.empty());
    CHECK_FALSE(i->inflate("x", used, out, 1024).ok());

    // A final block ends the stream: IMAP's never does.
    auto j = Inflater::create();
    REQUIRE(j.ok());
    std::string finished("\x03\x00", 2);  // an empty final fixed-Huffman block
    CHECK_FALSE(j->inflate(finished, used, out, 1024).ok());

    // Truncated input is not an error: it waits for more.
    auto d = Deflater::create();
    REQUIRE(d.ok());
    std::string wire;
    REQUIRE(d->compress("hello, world\r\n", wire, true).ok());
    auto k = Inflater::create();
    REQUIRE(k.ok());
    out.clear();
    REQUIRE(k->inflate(std::string_view(wire).substr(0, 3), used, out, 1024).ok());
    REQUIRE(k->inflate(std::string_view(wire).substr(3), used, out, 1024).ok());
    CHECK(out == "hello, world\r\n");
}
