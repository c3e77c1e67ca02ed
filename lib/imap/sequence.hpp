// IMAP sequence sets (RFC 9051 9, "sequence-set"): "1:4,7,9:*" of message
// sequence numbers or UIDs, and "$", the result saved by SEARCH RETURN
// (SAVE) (RFC 5182).  "*" stands for the largest number in use, so a set is
// kept as written and resolved against the mailbox when it is used.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/imap/parser.hpp"

namespace tern::imap {

struct Range {
    uint32_t lo;
    uint32_t hi;  // lo <= hi after resolve()
    bool operator==(const Range&) const = default;
};

class SequenceSet {
public:
    static constexpr uint32_t kStar = 0;  // numbers are non-zero; 0 marks "*"

    // sequence-set / "$"; fails the parser on bad syntax (0, "1:", "1,,2").
    static std::optional<SequenceSet> parse(Parser& p);
    static SequenceSet of(std::vector<Range> ranges) { SequenceSet s; s.ranges_ = std::move(ranges); return s; }

    bool saved() const { return saved_; }  // "$": the caller substitutes the saved result
    const std::vector<Range>& ranges() const { return ranges_; }

    // Sorted, merged, "*" replaced by `largest`; a range is symmetric (4:2 is
    // 2:4) and "n:*" with n above largest is largest:n (RFC 9051 9).
    // Numbers above `largest` are kept: UID sets name UIDs that may not
    // exist, the caller intersects.  largest == 0 (empty mailbox): "*" alone
    // names nothing.
    std::vector<Range> resolve(uint32_t largest) const;
    bool contains(uint32_t n, uint32_t largest) const;

private:
    std::vector<Range> ranges_;
    bool saved_ = false;
};

// Merges sorted numbers into the compact form "1:3,5,7:9" (UIDPLUS, ESEARCH).
std::string format_sequence_set(const std::vector<uint32_t>& sorted);

}  // namespace tern::imap
