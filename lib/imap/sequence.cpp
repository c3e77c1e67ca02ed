// IMAP sequence sets (see sequence.hpp).
#include "lib/imap/sequence.hpp"

#include <algorithm>

namespace tern::imap {

namespace {

std::optional<uint32_t> seq_number(Parser& p) {
    if (p.take('*')) return SequenceSet::kStar;
    if (p.at_end() || p.rest()[0] < '0' || p.rest()[0] > '9') {
        p.fail("a sequence set like 1:5,7,9:*");
        return std::nullopt;
    }
    if (p.rest()[0] == '0') {
        p.fail("a sequence set (numbers start at 1)");
        return std::nullopt;
    }
    return p.number();
}

}  // namespace

std::optional<SequenceSet> SequenceSet::parse(Parser& p) {
    SequenceSet set;
    if (p.take('$')) {
        set.saved_ = true;
        return set;
    }
    while (true) {
        auto lo = seq_number(p);
        if (!lo) return std::nullopt;
        uint32_t hi = *lo;
        if (p.take(':')) {
            auto h = seq_number(p);
            if (!h) return std::nullopt;
            hi = *h;
        }
        set.ranges_.push_back({*lo, hi});
        if (!p.take(',')) break;
    }
    return set;
}

std::vector<Range> SequenceSet::resolve(uint32_t largest) const {
    std::vector<Range> out;
    out.reserve(ranges_.size());
    for (Range r : ranges_) {
        if (r.lo == kStar) r.lo = largest;
        if (r.hi == kStar) r.hi = largest;
        if (r.lo > r.hi) std::swap(r.lo, r.hi);
        if (r.lo == 0) r.lo = 1;
        if (r.hi == 0) continue;  // "*" of an empty mailbox
        out.push_back(r);
    }
    std::sort(out.begin(), out.end(), [](const Range& a, const Range& b) { return a.lo < b.lo; });
    std::vector<Range> merged;
    for (const Range& r : out) {
        if (!merged.empty() && (merged.back().hi == UINT32_MAX || r.lo <= merged.back().hi + 1))
            merged.back().hi = std::max(merged.back().hi, r.hi);
        else
            merged.push_back(r);
    }
    return merged;
}

bool SequenceSet::contains(uint32_t n, uint32_t largest) const {
    for (Range r : ranges_) {
        if (r.lo == kStar) r.lo = largest;
        if (r.hi == kStar) r.hi = largest;
        if (r.lo > r.hi) std::swap(r.lo, r.hi);
        if (n >= r.lo && n <= r.hi && n != 0) return true;
    }
    return false;
}

std::string format_sequence_set(const std::vector<uint32_t>& sorted) {
    std::string out;
    size_t i = 0;
    while (i < sorted.size()) {
        size_t j = i;
        while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
        if (!out.empty()) out += ',';
        out += std::to_string(sorted[i]);
        if (j > i) out += ':' + std::to_string(sorted[j]);
        i = j + 1;
    }
    return out;
}

}  // namespace tern::imap
