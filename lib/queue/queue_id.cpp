// Queue IDs: 14 characters that sort by arrival and are unique across the
// processes sharing one queue.
//
//   TTTTTTTTTTTPPP
//   T: microseconds since the epoch, 11 base-32 digits (enough until ~3100)
//   P: 15 bits: a hash of the pid XOR 15 bits of the timestamp in units
//      of 2^16 us (~65 ms)
//
// Within a process the timestamp is made strictly increasing (a second id in
// the same microsecond takes the next microsecond), so ids of one process are
// unique and ordered even when generated faster than the clock ticks.  Two
// processes generating in the same microsecond differ in P because XOR with
// the same timestamp keeps distinct pid hashes distinct; should two pids
// share a hash anyway, the O_EXCL body create and the no-overwrite insert
// catch the collision.  Mixing the timestamp into P spreads the body files
// over the msg/<last two chars>/ directories over time, while the ids one
// process makes within ~65 ms share a directory: the committer then makes
// their entries durable with one fsync of it instead of one each
// (committer.cpp, DirectorySync).
//
// The alphabet is Crockford's base 32 (no I, L, O, U) in ASCII order, so
// string order is numeric order.
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/queue/queue.hpp"
#include "lib/sys/process.hpp"

namespace tern::queue {

namespace {

constexpr std::string_view kAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr size_t kTimeDigits = 11;
constexpr size_t kIdLength = 14;
constexpr unsigned kSameDirectoryBits = 16;  // ids of one process within 2^16 us share P

std::atomic<uint64_t> g_last_us{0};

uint64_t now_us() {
    timeval tv{};
    gettimeofday(&tv, nullptr);
    return uint64_t(tv.tv_sec) * 1000000u + uint64_t(tv.tv_usec);
}

// A strictly increasing microsecond count for this process.
uint64_t unique_us() {
    uint64_t now = now_us();
    uint64_t last = g_last_us.load(std::memory_order_relaxed);
    for (;;) {
        uint64_t next = now > last ? now : last + 1;
        if (g_last_us.compare_exchange_weak(last, next, std::memory_order_relaxed)) return next;
    }
}

uint32_t pid_hash() {
    // own_pid(): a forked child does not reuse its parent's value.
    uint32_t x = uint32_t(sys::own_pid());
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x & 0x7fff;
}

}  // namespace

std::string new_queue_id() {
    uint64_t us = unique_us();
    uint32_t tail = pid_hash() ^ uint32_t((us >> kSameDirectoryBits) & 0x7fff);
    std::string id(kIdLength, '0');
    for (size_t i = kTimeDigits; i-- > 0;) {
        id[i] = kAlphabet[us & 31];
        us >>= 5;
    }
    for (size_t i = kIdLength; i-- > kTimeDigits;) {
        id[i] = kAlphabet[tail & 31];
        tail >>= 5;
    }
    return id;
}

bool valid_queue_id(std::string_view id) {
    if (id.size() != kIdLength) return false;
    for (char c : id)
        if (kAlphabet.find(c) == std::string_view::npos) return false;
    return true;
}

}  // namespace tern::queue
