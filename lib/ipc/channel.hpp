// Channel: an IPC connection driven by a libevent loop.
//
// Reads frames (with their fds) as they arrive and hands each complete
// Message to on_message; queues outgoing frames and writes them when the
// socket is writable.  A protocol error or EOF calls on_close once; after
// that the channel does nothing.  Owned by whoever owns the connection.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "lib/core/fd.hpp"
#include "lib/ipc/message.hpp"

struct event_base;
struct event;

namespace tern::ipc {

class Channel {
public:
    using MessageHandler = std::function<void(Message&)>;
    using CloseHandler = std::function<void(const std::string& reason)>;  // "" on clean EOF

    Channel(event_base* base, Fd sock, MessageHandler on_message, CloseHandler on_close,
            uint32_t max_frame = kDefaultMaxFrame);
    ~Channel();
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    void send(const Message& message);  // fds are dup'd; never blocks
    int fd() const { return sock_.get(); }
    bool closed() const { return closed_; }
    bool sending() const { return !out_.empty(); }  // frames not yet taken by the kernel

private:
    static void on_readable(int, short, void* arg);
    static void on_writable(int, short, void* arg);
    void read_some();
    void write_some();
    bool flush_now();  // true when the one queued frame went out whole
    void fail(const std::string& reason);

    struct Outgoing {
        std::string bytes;
        std::vector<Fd> fds;
        size_t sent = 0;
    };
    Fd sock_;
    MessageHandler on_message_;
    CloseHandler on_close_;
    Decoder decoder_;
    std::deque<Outgoing> out_;
    ::event* read_event_ = nullptr;
    ::event* write_event_ = nullptr;
    bool closed_ = false;
    // Shared with callbacks in flight: a handler may destroy the Channel.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tern::ipc
