// CRC-32C, reflected polynomial 0x82F63B78: the CPU's crc32 instruction
// where there is one (SSE 4.2, since 2008), a table otherwise.  The commit
// log sums every record on smtpd's 250 path; the table took ~5% of smtpd's
// CPU there (perf), the instruction a small fraction of that.
#include "lib/core/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace tern {

namespace {

constexpr std::array<uint32_t, 256> make_table() {
    std::array<uint32_t, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[i] = c;
    }
    return table;
}

constexpr auto kTable = make_table();

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_instruction(std::string_view data, uint32_t crc) {
    uint64_t c = ~crc;
    const char* p = data.data();
    size_t n = data.size();
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t word;
        std::memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
    }
    uint32_t c32 = uint32_t(c);
    for (; n > 0; ++p, --n) c32 = _mm_crc32_u8(c32, uint8_t(*p));
    return ~c32;
}
#endif

}  // namespace

uint32_t crc32c_table(std::string_view data, uint32_t crc) {
    crc = ~crc;
    for (unsigned char byte : data) crc = kTable[(crc ^ byte) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t crc32c(std::string_view data, uint32_t crc) {
#if defined(__x86_64__)
    static const bool instruction = __builtin_cpu_supports("sse4.2");
    if (instruction) return crc32c_instruction(data, crc);
#endif
    return crc32c_table(data, crc);
}

}  // namespace tern
