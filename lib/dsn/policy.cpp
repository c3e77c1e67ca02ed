// Retry and notification rules (see policy.hpp).
#include "lib/dsn/policy.hpp"

#include <algorithm>

#include "lib/queue/queue.hpp"

namespace tern::dsn {

int64_t backoff_seconds(uint32_t attempts, int64_t minimal, int64_t maximal) {
    if (minimal < 1) minimal = 1;
    if (maximal < minimal) maximal = minimal;
    int64_t delay = minimal;
    // Doubling stops at the cap, so large attempt counts cannot overflow.
    for (uint32_t i = 1; i < attempts && delay < maximal; ++i) delay *= 2;
    return std::min(delay, maximal);
}

bool lifetime_expired(int64_t arrival_s, int64_t now_s, int64_t lifetime_s) {
    if (lifetime_s <= 0) return true;
    return now_s - arrival_s >= lifetime_s;
}

bool wants_notice(uint8_t notify, NoticeKind kind) {
    if (notify & queue::kNotifyNever) return false;
    if (notify == queue::kNotifyNone) return kind != NoticeKind::Success;
    switch (kind) {
    case NoticeKind::Failure: return (notify & queue::kNotifyFailure) != 0;
    case NoticeKind::Delay: return (notify & queue::kNotifyDelay) != 0;
    case NoticeKind::Success: return (notify & queue::kNotifySuccess) != 0;
    }
    return false;
}

}  // namespace tern::dsn
