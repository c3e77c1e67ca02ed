// For unit tests that drive a libevent loop: run it until a condition
// holds, in short slices (so a test with nothing pending cannot block),
// for 5 seconds at most.
#pragma once

#include <event2/event.h>

#include <chrono>

namespace tern::testing {

// False when the condition still does not hold after 5 seconds.
template <class Pred>
bool run_until(event_base* base, Pred done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        timeval slice{0, 10000};
        event_base_loopexit(base, &slice);
        event_base_loop(base, EVLOOP_ONCE);
    }
    return true;
}

}  // namespace tern::testing
