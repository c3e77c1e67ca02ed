// Unit tests for lib/mailstore/arrival_order: the order in which files
// found in a Maildir get their UIDs, by both of sort_by_arrival()'s ways
// (names all led by a number that fits, and any other list).
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "lib/mailstore/arrival_order.hpp"

using namespace tern::mailstore;

namespace {

// Sorts a shuffled copy of `expected` and compares.
void check_sorts_to(const std::vector<std::string>& expected) {
    std::mt19937 rng(7);
    for (int round = 0; round < 20; ++round) {
        auto names = expected;
        std::shuffle(names.begin(), names.end(), rng);
        sort_by_arrival(names);
        REQUIRE(names == expected);
    }
}

}  // namespace

TEST_CASE("arrival order: digit runs compare as numbers", "[mailstore]") {
    CHECK(arrival_order("1700000000.M99999P1", "1700000000.M100000P1"));
    CHECK_FALSE(arrival_order("1700000000.M100000P1", "1700000000.M99999P1"));
    CHECK(arrival_order("9.x", "10.x"));
    CHECK(arrival_order("0001.a", "2.a"));
    CHECK(arrival_order("99999999999999999999999.h", "abc.h"));  // digits before letters
    CHECK(arrival_order("1.a", "1.ab"));
    CHECK_FALSE(arrival_order("1.a", "1.a"));
}

TEST_CASE("arrival order: names led by numbers, with ties on the number", "[mailstore]") {
    // Sorted as integers (the number above the index), equal numbers by the
    // rest of the name.
    check_sorts_to({"9.x", "10.x", "0001700000000.M1P1.h", "1700000000.M99999P9Q9.h", "1700000000.M99999P9Q10.h",
                    "1700000000.M100000P9Q1.h", "1700000001.M5P9Q1.h", "9999999999999999999.z"});
}

TEST_CASE("arrival order: names the integer sort does not take", "[mailstore]") {
    // A name without a leading number, one of 20 digits (past 64 bits) and
    // one whose number leaves no room for the index: the general
    // comparison, the same order.
    check_sorts_to({"5.a", "1700000000.M1.h", "99999999999999999999999.h", "abc.h"});
    check_sorts_to({"5.a", "18446744073709551615.x"});
    check_sorts_to({"1.a", "9223372036854775807.x", "9223372036854775808.x"});
}

TEST_CASE("arrival order: a first SELECT's thousands of names, many in one second", "[mailstore]") {
    // Past the size where the leading numbers are sorted a byte at a time:
    // the same order as a sort by arrival_order(), ties on the second too.
    std::mt19937 rng(11);
    std::vector<std::string> names;
    for (int i = 0; i < 5000; ++i)
        names.push_back(std::to_string(1700000000 + rng() % 300) + ".M" + std::to_string(rng() % 1000000) + "P" +
                        std::to_string(i) + ".host,S=10,W=11:2,S");
    auto expected = names;
    std::sort(expected.begin(), expected.end(), [](const std::string& a, const std::string& b) { return arrival_order(a, b); });
    std::vector<std::string_view> views(names.begin(), names.end());
    auto order = arrival_permutation(views);
    REQUIRE(order.size() == names.size());
    for (size_t i = 0; i < order.size(); ++i) REQUIRE(names[order[i]] == expected[i]);
    sort_by_arrival(names);
    REQUIRE(names == expected);
}
