// The names of a directory listing, for one comparison with the index's
// records: sync() checks that cur/ holds exactly the files the records
// name by walking the records once and taking each name out of this
// table.  Open addressing over the listing's own strings (a probe reads one
// slot, then the name), where a node-based set cost a cache miss per node
// and two B-tree lookups per name cost more (100,000 names: ~5 ms against
// ~40 ms and ~80 ms).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tern::mailstore {

class NameTable {
public:
    // names must outlive the table; a name listed twice is kept once.
    explicit NameTable(const std::vector<std::string>& names);
    // Takes name out of the table: false when it is not there (not listed,
    // or taken already).
    bool take(std::string_view name);
    // Names not taken yet.
    size_t left() const { return left_; }

private:
    // A slot: the name's hash's upper half (compared before the name),
    // its index into names_ + 1 (0: an empty slot).
    static uint32_t tag_of(uint64_t hash) { return static_cast<uint32_t>(hash >> 32); }
    static uint32_t tag(uint64_t slot) { return static_cast<uint32_t>(slot >> 32); }
    static uint32_t index(uint64_t slot) { return static_cast<uint32_t>(slot) - 1; }
    const std::vector<std::string>& names_;
    std::vector<uint64_t> slots_;
    std::vector<bool> taken_;
    size_t mask_ = 0, left_ = 0;
};

}  // namespace tern::mailstore
