// libevent ownership helpers: the event base, and Watch, an event that owns
// its std::function callback.  The callback lives on the heap so a moved
// Watch keeps the pointer libevent was given.  A callback may destroy its
// own Watch, as long as that is the last thing it does.
#include "lib/event/loop.hpp"

#include <event2/thread.h>

#include <cstdio>
#include <cstdlib>

namespace tern::event {

Base make_base() {
    event_base* base = event_base_new();
    if (base == nullptr) {
        std::fputs("tern: event_base_new failed\n", stderr);
        std::abort();
    }
    return Base(base);
}

Watch::Watch(event_base* base, int fd, short what, Callback cb)
    : cb_(std::make_unique<Callback>(std::move(cb))),
      ev_(event_new(base, fd, what, &Watch::trampoline, cb_.get())) {
    if (!ev_) {
        std::fputs("tern: event_new failed\n", stderr);
        std::abort();
    }
}

void Watch::trampoline(evutil_socket_t, short what, void* arg) {
    auto* cb = static_cast<Callback*>(arg);
    if (*cb) (*cb)(what);
}

void Watch::add(std::chrono::milliseconds timeout) {
    if (!ev_) return;
    if (timeout.count() <= 0) {
        event_add(ev_.get(), nullptr);
        return;
    }
    timeval tv;
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    event_add(ev_.get(), &tv);
}

void Watch::add() {
    if (ev_) event_add(ev_.get(), nullptr);
}

void Watch::add_after_poll() {
    timeval zero{0, 0};
    if (ev_) event_add(ev_.get(), &zero);
}

void Watch::del() {
    if (ev_) event_del(ev_.get());
}

void Watch::activate() {
    if (ev_) event_active(ev_.get(), EV_TIMEOUT, 0);
}

bool Watch::pending() const {
    if (!ev_) return false;
    return event_pending(ev_.get(), EV_READ | EV_WRITE | EV_TIMEOUT | EV_SIGNAL, nullptr) != 0;
}

Watch timer(event_base* base, Watch::Callback cb) { return Watch(base, -1, 0, std::move(cb)); }

Watch signal_watch(event_base* base, int signo, Watch::Callback cb) {
    return Watch(base, signo, EV_SIGNAL | EV_PERSIST, std::move(cb));
}

void enable_threads() {
    if (evthread_use_pthreads() != 0) {
        std::fputs("tern: evthread_use_pthreads failed\n", stderr);
        std::abort();
    }
}

}  // namespace tern::event
