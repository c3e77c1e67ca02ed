// Maildir++ quota: the `maildirsize` file at the top of a Maildir.
//
//   50000000S,1000C        first line: the quota (bytes S, messages C)
//   1234 1                 then one line per change: bytes and message count
//   -1234 -1               (deliveries add, expunges subtract)
//
// The usage is the sum of the lines.  When the file is missing, its quota
// line differs from the current limit, it grew past 5120 bytes, or it cannot
// be parsed, the usage is recalculated by scanning cur/ and new/ of the
// Maildir and its Maildir++ folders (.Name/), taking sizes from the S= name
// field when present, and the file is rewritten atomically (the Maildir++
// rule for rebuilding it).  Writers append one line per delivered message
// with a single O_APPEND write, so concurrent deliveries do not mix lines.
#pragma once

#include <cstdint>
#include <string>

#include "lib/core/result.hpp"

namespace tern::maildir {

struct QuotaUsage {
    uint64_t bytes = 0;
    uint64_t messages = 0;
};

// Scans the Maildir (cur/ and new/ of it and of its .Folder/ subfolders).
Result<QuotaUsage> scan_usage(const std::string& dir);

// Current usage under a quota of limit_bytes (0 = none, then nothing is
// read or written and the usage is zero).
Result<QuotaUsage> quota_usage(const std::string& dir, uint64_t limit_bytes);

// Whether a message of size bytes fits: usage + size <= limit.
Result<bool> quota_allows(const std::string& dir, uint64_t limit_bytes, uint64_t size);

// Records a delivered (or removed, negative) message in maildirsize.
Status quota_record(const std::string& dir, uint64_t limit_bytes, int64_t bytes, int64_t messages);

}  // namespace tern::maildir
