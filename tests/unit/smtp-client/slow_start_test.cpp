// Tests for smtp-client's per-destination concurrency window (slow start).
#include <catch2/catch.hpp>

#include "smtp-client/slow_start.hpp"

using tern::smtpc::SlowStart;

TEST_CASE("slow start: a window of successes adds one session", "[smtpc][slowstart]") {
    SlowStart w(2, 4);
    CHECK(w.limit() == 2);
    w.success();
    CHECK(w.limit() == 2);  // 2.5
    w.success();
    CHECK(w.limit() == 2);  // 2.9
    w.success();
    CHECK(w.limit() == 3);  // 3.24
    for (int i = 0; i < 10; ++i) w.success();
    CHECK(w.limit() == 4);  // the ceiling
    for (int i = 0; i < 100; ++i) w.success();
    CHECK(w.limit() == 4);
}

TEST_CASE("slow start: failures shrink it, never below one; reset starts over", "[smtpc][slowstart]") {
    SlowStart w(3, 20);
    w.failure();
    CHECK(w.limit() == 2);  // 2.67
    for (int i = 0; i < 50; ++i) w.failure();
    CHECK(w.limit() == 1);
    w.reset();
    CHECK(w.limit() == 3);
    CHECK(SlowStart(50, 20).limit() == 20);  // the initial value never exceeds the ceiling
    CHECK(SlowStart(0, 20).limit() == 1);
}
