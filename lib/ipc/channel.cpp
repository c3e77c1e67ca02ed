// Channel: IPC frames over a non-blocking UNIX socket on a libevent loop.
//
// Reads go through the Decoder, which validates every frame; the first
// protocol error or EOF closes the channel once.  Writes are queued and
// flushed when the socket is writable; a frame's fds are sent with its first
// byte, and our dups of them are closed as soon as the kernel holds them.
// Handlers may destroy the Channel; alive_ tells us when that happened.
#include "lib/ipc/channel.hpp"

#include <event2/event.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "lib/ipc/socket_io.hpp"

namespace tern::ipc {

namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerWakeup = 8;  // fairness: let other connections run
}  // namespace

Channel::Channel(event_base* base, Fd sock, MessageHandler on_message, CloseHandler on_close,
                 uint32_t max_frame)
    : sock_(std::move(sock)),
      on_message_(std::move(on_message)),
      on_close_(std::move(on_close)),
      decoder_(max_frame) {
    int flags = ::fcntl(sock_.get(), F_GETFL);
    if (flags >= 0 && !(flags & O_NONBLOCK)) ::fcntl(sock_.get(), F_SETFL, flags | O_NONBLOCK);
    read_event_ = event_new(base, sock_.get(), EV_READ | EV_PERSIST, &Channel::on_readable, this);
    write_event_ = event_new(base, sock_.get(), EV_WRITE | EV_PERSIST, &Channel::on_writable, this);
    if (read_event_ == nullptr || write_event_ == nullptr) {
        // Out of memory; report it as a closed channel on first use.
        closed_ = true;
        return;
    }
    event_add(read_event_, nullptr);
}

Channel::~Channel() {
    *alive_ = false;
    if (read_event_) event_free(read_event_);
    if (write_event_) event_free(write_event_);
}

void Channel::on_readable(int, short, void* arg) { static_cast<Channel*>(arg)->read_some(); }
void Channel::on_writable(int, short, void* arg) { static_cast<Channel*>(arg)->write_some(); }

void Channel::send(const Message& message) {
    if (closed_) return;
    Outgoing out;
    out.bytes = encode(message);
    for (const auto& fd : const_cast<Message&>(message).fds()) {
        if (!fd.valid()) continue;
        int dup = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
        if (dup < 0) {
            fail(std::string("dup: ") + std::strerror(errno));
            return;
        }
        out.fds.emplace_back(dup);
    }
    if (out.fds.size() > kMaxFds) {
        fail("too many file descriptors for one message");
        return;
    }
    bool was_idle = out_.empty();
    out_.push_back(std::move(out));
    // Mostly the socket takes the whole frame at once: write it now, with
    // no trip through the loop.  What is left, and any error, is handled
    // from the loop (write_some), never from inside send(): no re-entry
    // into the caller's handlers.
    if (was_idle && flush_now()) return;
    event_add(write_event_, nullptr);
}

bool Channel::flush_now() {
    Outgoing& front = out_.front();
    std::vector<int> fds;
    for (const auto& fd : front.fds) fds.push_back(fd.get());
    ssize_t n = detail::send_with_fds(sock_.get(), front.bytes.data(), front.bytes.size(), fds.data(), fds.size());
    if (n <= 0) return false;  // EAGAIN or an error: write_some() sees it again
    front.fds.clear();
    front.sent = static_cast<size_t>(n);
    if (front.sent < front.bytes.size()) return false;
    out_.pop_front();
    return true;
}

void Channel::read_some() {
    if (closed_) return;
    // Hands every complete frame to on_message_; false when reading must
    // stop: a bad frame (channel failed), or the handler closed or
    // destroyed the channel.
    auto deliver = [this] {
        std::shared_ptr<bool> alive = alive_;
        for (;;) {
            auto next = decoder_.next();
            if (!next) {
                fail(next.message());
                return false;
            }
            if (!next->has_value()) return true;
            on_message_(**next);
            if (!*alive || closed_) return false;
        }
    };
    // One buffer per thread, not zeroed per wakeup: frames are copied out
    // by the decoder before the next read.
    thread_local std::vector<char> buf(kReadChunk);
    for (int round = 0; round < kReadsPerWakeup; ++round) {
        std::vector<Fd> fds;
        bool truncated = false;
        ssize_t n = detail::recv_with_fds(sock_.get(), buf.data(), buf.size(), fds, &truncated);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            fail(std::string("read: ") + std::strerror(errno));
            return;
        }
        if (truncated) {
            fail("too many file descriptors received");
            return;
        }
        if (n == 0) {
            // Deliver what is complete first, then report the EOF.
            if (!deliver()) return;
            fail(decoder_.idle() ? "" : "connection closed mid-frame");
            return;
        }
        decoder_.feed(std::string_view(buf.data(), static_cast<size_t>(n)));
        for (auto& fd : fds) decoder_.feed_fd(std::move(fd));
        if (!deliver()) return;
        if (static_cast<size_t>(n) < buf.size()) break;
    }
}

void Channel::write_some() {
    if (closed_) return;
    while (!out_.empty()) {
        Outgoing& front = out_.front();
        std::vector<int> fds;
        if (front.sent == 0)
            for (const auto& fd : front.fds) fds.push_back(fd.get());
        ssize_t n = detail::send_with_fds(sock_.get(), front.bytes.data() + front.sent,
                                          front.bytes.size() - front.sent, fds.data(), fds.size());
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            fail(std::string("write: ") + std::strerror(errno));
            return;
        }
        if (front.sent == 0) front.fds.clear();  // the kernel holds its own references now
        front.sent += static_cast<size_t>(n);
        if (front.sent == front.bytes.size()) out_.pop_front();
    }
    event_del(write_event_);
}

void Channel::fail(const std::string& reason) {
    if (closed_) return;
    closed_ = true;
    if (read_event_) event_del(read_event_);
    if (write_event_) event_del(write_event_);
    out_.clear();
    sock_.reset();
    if (on_close_) {
        // The handler may destroy us; nothing touches members after it.
        CloseHandler handler = on_close_;
        handler(reason);
    }
}

}  // namespace tern::ipc
