// Tests for lib/event: timers, signal watches, fd watches, and waking the
// loop from another thread.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "lib/core/fd.hpp"
#include "lib/event/loop.hpp"
#include "tests/unit/lib/loop_until.hpp"

using namespace tern;
using namespace std::chrono_literals;

using testing::run_until;

TEST_CASE("event: a timer fires once after its timeout", "[event]") {
    auto base = event::make_base();
    int fired = 0;
    auto start = std::chrono::steady_clock::now();
    auto t = event::timer(base.get(), [&](short what) {
        CHECK((what & EV_TIMEOUT) != 0);
        ++fired;
    });
    CHECK_FALSE(t.pending());
    t.add(30ms);
    CHECK(t.pending());
    run_until(base.get(), [&] { return fired > 0; });
    CHECK(fired == 1);
    CHECK(std::chrono::steady_clock::now() - start >= 25ms);
    CHECK_FALSE(t.pending());
    // A deleted timer does not fire.
    t.add(10ms);
    t.del();
    event_base_loop(base.get(), EVLOOP_NONBLOCK);
    CHECK(fired == 1);
}

TEST_CASE("event: moved Watches keep their callbacks", "[event]") {
    auto base = event::make_base();
    int fired = 0;
    event::Watch w;
    CHECK_FALSE(w);
    w = event::timer(base.get(), [&](short) { ++fired; });
    event::Watch moved = std::move(w);
    moved.add(1ms);
    run_until(base.get(), [&] { return fired > 0; });
    CHECK(fired == 1);
}

TEST_CASE("event: signal watch and fd watch", "[event]") {
    auto base = event::make_base();
    int signals = 0;
    auto sig = event::signal_watch(base.get(), SIGUSR1, [&](short) { ++signals; });
    sig.add();
    ::raise(SIGUSR1);
    run_until(base.get(), [&] { return signals > 0; });
    CHECK(signals == 1);
    ::raise(SIGUSR1);  // persistent: fires again
    run_until(base.get(), [&] { return signals > 1; });
    CHECK(signals == 2);
    sig.del();

    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    Fd r(fds[0]), wr(fds[1]);
    std::string got;
    event::Watch reader(base.get(), r.get(), EV_READ | EV_PERSIST, [&](short) {
        char buf[16];
        ssize_t n = ::read(r.get(), buf, sizeof buf);
        if (n > 0) got.append(buf, static_cast<size_t>(n));
    });
    reader.add();
    REQUIRE(::write(wr.get(), "abc", 3) == 3);
    run_until(base.get(), [&] { return got.size() >= 3; });
    CHECK(got == "abc");
}

TEST_CASE("event: activate from another thread wakes the loop", "[event]") {
    event::enable_threads();
    auto base = event::make_base();
    bool woke = false;
    auto w = event::timer(base.get(), [&](short) { woke = true; });
    // A long timeout keeps the loop blocked until the thread activates it.
    w.add(10s);
    std::thread t([&] {
        std::this_thread::sleep_for(20ms);
        w.activate();
    });
    auto start = std::chrono::steady_clock::now();
    run_until(base.get(), [&] { return woke; });
    t.join();
    CHECK(woke);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
}
