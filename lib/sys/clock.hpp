// Wall-clock and monotonic time in the units tern stores and logs.
#pragma once

#include <cstdint>
#include <ctime>

namespace tern::sys {

// Wall clock (queue arrival times, next-try times, log stamps).
inline int64_t now_us() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}
inline int64_t now_s() { return static_cast<int64_t>(time(nullptr)); }

// Monotonic clock for timeouts and durations (immune to clock steps).
inline int64_t monotonic_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace tern::sys
