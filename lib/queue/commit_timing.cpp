// Per-stage timing of the group commit: see commit_timing.hpp.
#include "lib/queue/commit_timing.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace tern::queue {
namespace {

constexpr const char* kStageNames[] = {"body to sync thread", "fdatasync", "synced", "to commit thread",
                                       "dir fsync", "log write", "to loop", "total"};

int64_t at(const CommitStamps& s, CommitStamp which) { return s[size_t(which)]; }

}  // namespace

bool CommitTiming::enabled() {
    static const bool on = [] {
        const char* v = std::getenv("TERN_COMMIT_TIMING");
        return v && *v;
    }();
    return on;
}

int64_t CommitTiming::now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void CommitTiming::add(const CommitStamps& s) {
    using S = CommitStamp;
    ++messages_;
    if (stage_[0].size() >= kMaxSamples) return;
    const int64_t d[kStages] = {at(s, S::BodyStart) - at(s, S::Submitted),
                                at(s, S::BodyEnd) - at(s, S::BodyStart),
                                at(s, S::BodyEnd) - at(s, S::Submitted),
                                at(s, S::CommitStart) - at(s, S::BodyEnd),
                                at(s, S::DirEnd) - at(s, S::DirStart),
                                at(s, S::Committed) - at(s, S::DirEnd),
                                at(s, S::Done) - at(s, S::Committed),
                                at(s, S::Done) - at(s, S::Submitted)};
    for (size_t i = 0; i < kStages; ++i) stage_[i].push_back(d[i]);
}

std::string CommitTiming::summary() const {
    if (messages_ == 0) return "";
    char buf[128];
    std::snprintf(buf, sizeof buf, "commit timing: %zu messages, %.1f per batch; ms p50/p90/p99:", messages_,
                  batches_ ? double(messages_) / double(batches_) : 0.0);
    std::string out = buf;
    for (size_t i = 0; i < kStages; ++i) {
        std::vector<int64_t> v = stage_[i];
        std::sort(v.begin(), v.end());
        auto pct = [&](double p) { return double(v[size_t(p * double(v.size() - 1))]) / 1e6; };
        std::snprintf(buf, sizeof buf, "%s %s %.2f/%.2f/%.2f", i ? "," : "", kStageNames[i], pct(0.5), pct(0.9),
                      pct(0.99));
        out += buf;
    }
    return out;
}

}  // namespace tern::queue
