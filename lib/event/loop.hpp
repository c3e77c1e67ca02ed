// RAII owners for libevent objects, so no cleanup path is written by hand.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <chrono>
#include <functional>
#include <memory>

namespace tern::event {

struct BaseDeleter { void operator()(event_base* b) const { event_base_free(b); } };
struct EventDeleter { void operator()(::event* e) const { event_free(e); } };
struct BuffereventDeleter { void operator()(bufferevent* b) const { bufferevent_free(b); } };
struct ListenerDeleter { void operator()(evconnlistener* l) const { evconnlistener_free(l); } };

using Base = std::unique_ptr<event_base, BaseDeleter>;
using Event = std::unique_ptr<::event, EventDeleter>;
using BufferEvent = std::unique_ptr<bufferevent, BuffereventDeleter>;
using Listener = std::unique_ptr<evconnlistener, ListenerDeleter>;

Base make_base();  // aborts on failure (out of memory)

// A callback-owning event: timers, signals, fd watches with std::function.
class Watch {
public:
    using Callback = std::function<void(short what)>;
    Watch() = default;
    Watch(event_base* base, int fd, short what, Callback cb);  // what: EV_READ|EV_PERSIST etc.
    Watch(Watch&&) = default;
    Watch& operator=(Watch&&) = default;

    void add(std::chrono::milliseconds timeout);  // timeout <= 0: no timeout
    void add();
    void del();
    void activate();   // run the callback from the loop soon (thread-safe when
                       // libevent pthreads support is on, see enable_threads())
    void add_after_poll();  // a timer due at once: runs after the loop has polled
                            // its fds once more (what became ready meanwhile runs first)
    bool pending() const;
    explicit operator bool() const { return bool(ev_); }

private:
    static void trampoline(evutil_socket_t, short what, void* arg);
    std::unique_ptr<Callback> cb_;
    Event ev_;
};

Watch timer(event_base* base, Watch::Callback cb);                  // one-shot; add(timeout)
Watch signal_watch(event_base* base, int signo, Watch::Callback cb);  // persistent; add()

// Call once before make_base() in processes where a worker thread wakes the
// loop (group commit): evthread_use_pthreads().
void enable_threads();

}  // namespace tern::event
