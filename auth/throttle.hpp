// Failure throttling: remembers failed logins per client address and per
// user name, so that a password-guessing client gets ever slower answers
// and then none at all.
//
// Each key ("192.0.2.1", "alice@example.org") counts its failures within
// auth_failure_window (a failure older than the window starts the count
// again).  The answer to a failed attempt waits auth_failure_delay, doubled
// for every earlier failure of the worse of the two keys, at most
// auth_failure_delay_max.  With auth_failure_limit failures a key is blocked
// for auth_block_time: every login for it fails without a password check
// (so guessing cannot go on behind the block).  A successful login clears
// the address and the user.  State lives in this process only: a restart
// forgets it, which the block time makes harmless.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tern::authd {

struct ThrottleSettings {
    std::chrono::milliseconds delay{500};
    std::chrono::milliseconds max_delay{8000};
    int limit = 10;  // 0 = never block
    std::chrono::seconds window{900};
    std::chrono::seconds block_time{900};
};

class Throttle {
public:
    using Clock = std::chrono::steady_clock;
    explicit Throttle(ThrottleSettings s) : s_(s) {}

    // Why a login for (ip, user) is refused now ("client address blocked"),
    // or nullopt.  ip may be empty (a local tool).
    std::optional<std::string> blocked(std::string_view ip, std::string_view user, Clock::time_point now);

    struct AfterFailure {
        std::chrono::milliseconds delay{0};
        std::string new_block;  // "" or "client address blocked" / "user blocked" when this failure blocked a key
    };
    AfterFailure failed(std::string_view ip, std::string_view user, Clock::time_point now);
    void succeeded(std::string_view ip, std::string_view user);

    // The delay for an attempt refused by a block: the maximum.
    std::chrono::milliseconds block_delay() const { return s_.max_delay; }
    size_t tracked() const { return entries_.size(); }

private:
    struct Entry {
        int failures = 0;
        Clock::time_point last{};
        Clock::time_point blocked_until{};
    };
    Entry* find(const std::string& key, Clock::time_point now);
    void prune(Clock::time_point now);
    ThrottleSettings s_;
    std::unordered_map<std::string, Entry> entries_;  // "ip:" / "user:" + key
    unsigned since_prune_ = 0;
};

}  // namespace tern::authd
