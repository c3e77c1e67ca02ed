// Table-driven CRC-32C, reflected polynomial 0x82F63B78.
#include "lib/core/crc32c.hpp"

#include <array>

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

}  // namespace

uint32_t crc32c(std::string_view data, uint32_t crc) {
    crc = ~crc;
    for (unsigned char byte : data) crc = kTable[(crc ^ byte) & 0xff] ^ (crc >> 8);
    return ~crc;
}

}  // namespace tern
