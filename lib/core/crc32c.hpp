// CRC-32C (Castagnoli), to tell a torn or stale record on disk from a
// whole one (lib/queue/commit_log).  Not a defence against forgery.
#pragma once

#include <cstdint>
#include <string_view>

namespace tern {

// crc32c("123456789") == 0xE3069283.  Pass the previous result as `crc` to
// continue over several pieces.
uint32_t crc32c(std::string_view data, uint32_t crc = 0);
// The same by table, whatever the CPU has (for tests of the fast path).
uint32_t crc32c_table(std::string_view data, uint32_t crc = 0);

}  // namespace tern
