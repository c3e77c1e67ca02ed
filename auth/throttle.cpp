// Failure throttling: see throttle.hpp.
#include "auth/throttle.hpp"

#include <algorithm>

namespace tern::authd {
namespace {
constexpr size_t kMaxEntries = 200000;  // memory bound against an address-spraying attacker
}

Throttle::Entry* Throttle::find(const std::string& key, Clock::time_point now) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return nullptr;
    Entry& e = it->second;
    if (e.blocked_until > now) return &e;
    if (now - e.last > s_.window && e.blocked_until <= now) {
        entries_.erase(it);
        return nullptr;
    }
    return &e;
}

std::optional<std::string> Throttle::blocked(std::string_view ip, std::string_view user, Clock::time_point now) {
    if (!ip.empty())
        if (Entry* e = find("ip:" + std::string(ip), now); e && e->blocked_until > now) return "client address blocked";
    if (!user.empty())
        if (Entry* e = find("user:" + std::string(user), now); e && e->blocked_until > now) return "user blocked";
    return std::nullopt;
}

Throttle::AfterFailure Throttle::failed(std::string_view ip, std::string_view user, Clock::time_point now) {
    if (++since_prune_ >= 1024 || entries_.size() >= kMaxEntries) prune(now);
    AfterFailure out;
    int worst = 0;
    auto count = [&](const std::string& key, const char* what) {
        Entry* e = find(key, now);
        if (e == nullptr) e = &entries_[key];
        e->failures += 1;
        e->last = now;
        worst = std::max(worst, e->failures);
        if (s_.limit > 0 && e->failures >= s_.limit && e->blocked_until <= now) {
            e->blocked_until = now + s_.block_time;
            if (out.new_block.empty()) out.new_block = what;
        }
    };
    if (!ip.empty()) count("ip:" + std::string(ip), "client address blocked");
    if (!user.empty()) count("user:" + std::string(user), "user blocked");
    auto delay = s_.delay;
    for (int i = 1; i < worst && delay < s_.max_delay; ++i) delay *= 2;
    out.delay = std::min(delay, s_.max_delay);
    return out;
}

void Throttle::succeeded(std::string_view ip, std::string_view user) {
    if (!ip.empty()) entries_.erase("ip:" + std::string(ip));
    if (!user.empty()) entries_.erase("user:" + std::string(user));
}

void Throttle::prune(Clock::time_point now) {
    since_prune_ = 0;
    for (auto it = entries_.begin(); it != entries_.end();) {
        const Entry& e = it->second;
        if (e.blocked_until <= now && now - e.last > s_.window)
            it = entries_.erase(it);
        else
            ++it;
    }
    // Still too many: forget unblocked entries first (blocks are what matter).
    for (auto it = entries_.begin(); entries_.size() >= kMaxEntries && it != entries_.end();) {
        if (it->second.blocked_until <= now)
            it = entries_.erase(it);
        else
            ++it;
    }
}

}  // namespace tern::authd
