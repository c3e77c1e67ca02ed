// A listing's names by hash, taken out one by one (see name_table.hpp).
#include "lib/mailstore/name_table.hpp"

#include <functional>

namespace tern::mailstore {

NameTable::NameTable(const std::vector<std::string>& names) : names_(names), taken_(names.size(), false) {
    size_t capacity = 16;
    while (capacity < names.size() * 2) capacity <<= 1;  // at most half full: short probe runs
    slots_.assign(capacity, 0);
    mask_ = capacity - 1;
    for (uint32_t i = 0; i < names.size(); ++i) {
        uint64_t hash = std::hash<std::string_view>{}(names[i]);
        size_t at = hash & mask_;
        bool twin = false;
        for (; slots_[at] != 0; at = (at + 1) & mask_)
            if (tag(slots_[at]) == tag_of(hash) && names_[index(slots_[at])] == names[i]) {
                twin = true;
                break;
            }
        if (twin) continue;
        slots_[at] = (uint64_t{tag_of(hash)} << 32) | (i + 1);
        ++left_;
    }
}

bool NameTable::take(std::string_view name) {
    uint64_t hash = std::hash<std::string_view>{}(name);
    for (size_t at = hash & mask_; slots_[at] != 0; at = (at + 1) & mask_) {
        if (tag(slots_[at]) != tag_of(hash)) continue;
        uint32_t i = index(slots_[at]);
        if (names_[i] != name) continue;
        if (taken_[i]) return false;
        taken_[i] = true;
        --left_;
        return true;
    }
    return false;
}

}  // namespace tern::mailstore
