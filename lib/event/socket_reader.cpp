// Reading a plain socket into an evbuffer: see socket_reader.hpp.
#include "lib/event/socket_reader.hpp"

#include <event2/buffer.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>

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
    while (got < kPerWakeup) {
        size_t held = evbuffer_get_length(into_);
        size_t room = held < max_unread_ ? max_unread_ - held : 0;
        if (room == 0) {
            full_ = true;
            watch_.del();
            break;
        }
        size_t want = std::min(room, kPiece);
        evbuffer_iovec vec[2];
        int n = evbuffer_reserve_space(into_, static_cast<ev_ssize_t>(want), vec, 2);
        if (n <= 0) {
            error = ENOMEM;
            break;
        }
        iovec iov[2];
        size_t asked = 0;
        for (int i = 0; i < n; ++i) {
            size_t len = std::min(vec[i].iov_len, want - asked);
            iov[i] = {vec[i].iov_base, len};
            asked += len;
        }
        ssize_t r = ::readv(fd_, iov, n);
        if (r < 0) {
            evbuffer_commit_space(into_, vec, 0);
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) error = errno;
            break;
        }
        if (r == 0) {
            evbuffer_commit_space(into_, vec, 0);
            eof = true;
            break;
        }
        size_t left = static_cast<size_t>(r);
        int used = 0;
        for (; used < n && left > 0; ++used) {
            vec[used].iov_len = std::min(left, iov[used].iov_len);
            left -= vec[used].iov_len;
        }
        evbuffer_commit_space(into_, vec, used);
        got += static_cast<size_t>(r);
        if (static_cast<size_t>(r) < asked) break;  // the socket is empty
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
