// Where a received message's time goes between the end of DATA and its 250:
// the stages of the group commit (committer.hpp), measured per message.
//
// Off unless TERN_COMMIT_TIMING is set in the environment (a measuring knob
// for benchmarks, like TERN_FAULT_* for tests; bench/mail-flow/profile
// --timing sets it).  When on, the Committer stamps each message at every
// stage, and when it stops it logs one line with the count, the mean batch
// size, and p50/p90/p99 of every stage in milliseconds:
//
//   commit timing: 3000 messages, 3.0 per batch; ms p50/p90/p99: body to
//   sync thread 0.02/0.05/0.30, fdatasync 0.61/1.40/3.10, ..., total 2.10/4.00/7.20
//
// Off, it costs the Committer a boolean test per message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tern::queue {

// The moments a message passes (steady clock, nanoseconds).  The body's
// sync runs on a sync thread, "synced" is from Submitted until it returned;
// the commit thread then fsyncs the batch's directories and commits.
enum class CommitStamp : uint8_t {
    Submitted,    // end of DATA: handed to the Committer (loop thread)
    BodyStart,    // a sync thread starts fdatasync of the body
    BodyEnd,      // ... and it returned
    CommitStart,  // the commit thread took the batch that holds it
    DirStart,     // it starts fsync of the body's directory
    DirEnd,       // ... and it returned
    Committed,    // that batch's commit log record is synced
    Done,         // its completion ran on the loop thread (the 250 is sent now)
    Count
};

using CommitStamps = int64_t[size_t(CommitStamp::Count)];

class CommitTiming {
public:
    static bool enabled();  // TERN_COMMIT_TIMING set (read once)
    static int64_t now_ns();

    // One finished message (loop thread only).
    void add(const CommitStamps& stamps);
    void add_batch() { ++batches_; }  // commit thread, counted under the Committer's lock
    // The log line's text; "" when nothing was measured.
    std::string summary() const;

private:
    static constexpr size_t kMaxSamples = 200000;  // bounded memory on a long run
    static constexpr size_t kStages = 8;
    std::vector<int64_t> stage_[kStages];
    size_t messages_ = 0;
    size_t batches_ = 0;
};

}  // namespace tern::queue
