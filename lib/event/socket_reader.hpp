// SocketReader: reads a non-blocking plain socket into an evbuffer on a
// libevent loop, in 64 KiB pieces, until the socket is empty.
//
// Why not the bufferevent's own reading: libevent 2.1 (Debian 12) reads at
// most 4 KiB per wakeup and asks the kernel how much is waiting (FIONREAD)
// before each read, so a 100 KiB message costs 25 trips through epoll_wait
// and 50 system calls; 2.2's evbuffer_set_max_read() is not available.
// The bufferevent still owns the socket, its output and write timeouts;
// this only takes the reading side (keep the bufferevent's EV_READ off),
// appending to the bufferevent's input as the bufferevent itself would.
//
// The callback gets Data after bytes were appended (one call per wakeup),
// then, when it happened, Eof, Error (errno kept) or Timeout (no byte for
// the timeout given to enable()).  Reading stops by itself after Eof and
// Error, and while the buffer holds max_unread bytes: call resume() once
// the owner has consumed some.  The owner may destroy the reader inside
// the callback only if it returns false from it.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

#include "lib/event/loop.hpp"

struct evbuffer;

namespace tern::event {

class SocketReader {
public:
    enum class What { Data, Eof, Error, Timeout };
    // Return false when the reader may no longer be touched (closed, destroyed).
    using Callback = std::function<bool(What what)>;

    SocketReader(event_base* base, int fd, evbuffer* into, size_t max_unread, Callback cb);
    void enable(std::chrono::seconds timeout);  // (re)starts the idle timeout
    void disable();
    bool enabled() const { return enabled_; }
    void resume();  // after the owner consumed input that had reached max_unread

private:
    void on_readable(short what);

    int fd_;
    evbuffer* into_;
    size_t max_unread_;
    Callback cb_;
    Watch watch_;
    std::chrono::seconds timeout_{0};
    bool enabled_ = false;
    bool full_ = false;  // paused at max_unread
    bool done_ = false;  // after Eof or Error
};

}  // namespace tern::event
