// The order in which files found in a Maildir get their UIDs: arrival
// order, read from the names other software gives its files
// ("<seconds>.M<microseconds>P<pid>...", "<seconds>.<queue id>_..."): runs
// of digits compare as numbers, so "1700000000.M99999P1" comes before
// "1700000000.M100000P1" and "9.x" before "10.x".  A first SELECT of a big
// folder sorts every name of cur/ this way, so the usual names (led by a
// number) are sorted as integers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tern::mailstore {

// Whether a arrived before b (a strict weak order): digit runs compare by value (leading zeros
// do not count, runs longer than 64 bits too), other bytes as bytes.
bool arrival_order(std::string_view a, std::string_view b);

// The names' indices in arrival_order(): order[i] is the index in `names`
// of the i-th to arrive.  Nothing is moved: a first SELECT copies each
// name once, in this order, and reads the copies in that order after.
// (Left where the listing put them, each later pass over 100,000 names
// in arrival order missed the cache on every name.)
std::vector<uint32_t> arrival_permutation(const std::vector<std::string_view>& names);

// Sorts names by arrival_order().
void sort_by_arrival(std::vector<std::string>& names);

}  // namespace tern::mailstore
