// Reading a plain socket into an evbuffer: see socket_reader.hpp.
#include "lib/event/socket_reader.hpp"

#include <event2/buffer.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

namespace tern::event {
namespace {

constexpr size_t kPiece = 64 * 1024;
constexpr size_t kPerWakeup = 256 * 1024;  // fairness: other connections run too

}  // namespace

SocketReader::SocketReader(event_base* base, int fd, evbuffer* into, size_t max_unread, Callback cb)
    : fd_(fd), into_(into), max_unread_(max_unread), cb_(std::move(cb)) {
    watch_ = Watch(base, fd, EV_READ | EV_PERSIST, [this](short what) { on_readable(what); });
}

void SocketReader::enable(std::chrono::seconds timeout) {
    timeout_ = timeout;
    enabled_ = true;
    if (!done_ && !full_) watch_.add(std::chrono::duration_cast<std::chrono::milliseconds>(timeout_));
}

void SocketReader::disable() {
    enabled_ = false;
    watch_.del();
}

void SocketReader::resume() {
    if (!full_ || evbuffer_get_length(into_) >= max_unread_) return;
    full_ = false;
    if (enabled_) enable(timeout_);
}

void SocketReader::on_readable(short what) {
    if (what & EV_TIMEOUT) {
        cb_(What::Timeout);
        return;
    }
    size_t got = 0;
    int error = 0;
    bool eof = false;
    // A bufferevent keeps its input's end frozen (only it may add there);
    // it unfreezes it around its own reads the same way.
    evbuffer_unfreeze(into_, 0);
    // Read into this thread's scratch buffer and append what came: asking
    // the evbuffer for 64 KiB of room instead made it allocate (and free)
    // a 128 KiB chain for every 30-byte SMTP command -- the largest user
    // time of smtpd (perf).  The copy of what arrived is cheap beside it.
    thread_local std::unique_ptr<char[]> scratch(new char[kPiece]);
    while (got < kPerWakeup) {
        size_t held = evbuffer_get_length(into_);
        size_t room = held < max_unread_ ? max_unread_ - held : 0;
        if (room == 0) {
            full_ = true;
            watch_.del();
            break;
        }
        size_t want = std::min(room, kPiece);
        ssize_t r = ::read(fd_, scratch.get(), want);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) error = errno;
            break;
        }
        if (r == 0) {
            eof = true;
            break;
        }
        if (evbuffer_add(into_, scratch.get(), static_cast<size_t>(r)) != 0) {
            error = ENOMEM;
            break;
        }
        got += static_cast<size_t>(r);
        if (static_cast<size_t>(r) < want) break;  // the socket is empty
    }
    evbuffer_freeze(into_, 0);
    if (eof || error) {
        done_ = true;
        watch_.del();
    }
    if (got > 0 && !cb_(What::Data)) return;
    if (eof) {
        cb_(What::Eof);
    } else if (error) {
        errno = error;
        cb_(What::Error);
    }
}

}  // namespace tern::event
