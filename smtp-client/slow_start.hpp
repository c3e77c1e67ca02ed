// SlowStart: how many sessions one destination may have at once, grown and
// shrunk by feedback as Postfix's qmgr does with its concurrency window.
//
// A destination starts at smtp_initial_destination_concurrency sessions.
// Each delivery a server answered adds 1/window (a whole window of
// successes adds one session), each connection that failed takes 1/window
// away, never below one; smtp_destination_concurrency_limit is the ceiling.
// A receiver that cannot take many parallel sessions is thus not flooded
// at once, and a healthy one soon gets the full limit.  The Agent resets a
// destination that went quiet (no session left) to the initial value.
#pragma once

#include <algorithm>

namespace tern::smtpc {

class SlowStart {
public:
    SlowStart() = default;
    SlowStart(int initial, int ceiling)
        : initial_(std::clamp(initial, 1, std::max(1, ceiling))), ceiling_(std::max(1, ceiling)), window_(initial_) {}

    int limit() const { return std::clamp(static_cast<int>(window_), 1, ceiling_); }
    void success() { window_ = std::min<double>(ceiling_, window_ + 1.0 / window_); }
    void failure() { window_ = std::max(1.0, window_ - 1.0 / window_); }
    void reset() { window_ = initial_; }

private:
    int initial_ = 1, ceiling_ = 1;
    double window_ = 1;
};

}  // namespace tern::smtpc
