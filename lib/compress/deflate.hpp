// Raw DEFLATE streams (RFC 1951: no zlib or gzip framing) through zlib, for
// IMAP COMPRESS=DEFLATE (RFC 4978): one Deflater for what we send, one
// Inflater for what the peer sends, each living as long as the connection.
//
//   auto d = compress::Deflater::create(compress::kSmallWindow);
//   d->compress("* OK ...\r\n", out);       // buffered inside zlib
//   d->compress({}, out, true);             // sync flush: the peer can read all of it
//
//   auto i = compress::Inflater::create();
//   size_t used = 0;
//   i->inflate(wire, used, plain, 64 * 1024);  // at most 64 KiB of output per call
//
// Memory (zlib's own figures): a deflater holds (1 << (window_bits + 2)) +
// (1 << (mem_level + 9)) bytes; an inflater a 1 << 15 byte window (the peer
// chooses its window, so ours must take the largest) plus about 7 KiB.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "lib/core/result.hpp"

namespace tern::compress {

struct DeflateSettings {
    int level = 6;         // 1 (fast) .. 9 (small); 6 is zlib's default
    int window_bits = 15;  // 9..15: the history the compressor looks back into
    int mem_level = 8;     // 1..9: size of the match-finding hash
};

// 4 KiB of history, a 2 KiB hash: 32 KiB per stream instead of zlib's
// default 256 KiB, for a few per cent worse compression of mail text.
inline constexpr DeflateSettings kSmallWindow{6, 12, 5};

class Deflater {
public:
    static Result<Deflater> create(const DeflateSettings& settings = {});
    Deflater(Deflater&&) noexcept;
    Deflater& operator=(Deflater&&) noexcept;
    ~Deflater();

    // Compresses data and appends what zlib emits to out.  With sync_flush
    // everything given so far is emitted, ending on a byte boundary (an
    // empty stored block, Z_SYNC_FLUSH), so the peer can decode it all.
    Status compress(std::string_view data, std::string& out, bool sync_flush = false);

private:
    struct State;
    explicit Deflater(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

class Inflater {
public:
    static Result<Inflater> create();
    Inflater(Inflater&&) noexcept;
    Inflater& operator=(Inflater&&) noexcept;
    ~Inflater();

    // Decompresses from data, appending at most max_out bytes to out;
    // consumed says how much of data was used (the rest waits for a call
    // with room).  An error for corrupt input or a stream that ended (the
    // IMAP stream never ends): the Inflater is unusable afterwards.
    Status inflate(std::string_view data, size_t& consumed, std::string& out, size_t max_out);

private:
    struct State;
    explicit Inflater(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

}  // namespace tern::compress
