// Accepts client connections (TCP or UNIX) on the listening sockets master
// passed to a protocol daemon (imapd, pop3d) and hands each one over,
// non-blocking and, on TCP, with Nagle off (replies are small and the
// client waits for each).
//
// Pace::OnePerWakeup takes one connection and pauses for a moment, so that
// the other processes sharing the socket get their share of a burst.
//
// Log line (warning): accept: <error text>
#pragma once

#include <sys/socket.h>

#include <functional>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"
#include "lib/event/loop.hpp"

namespace tern::net {

class Acceptor {
public:
    enum class Pace { AllReady, OnePerWakeup };
    // fd: the accepted connection, owned by the callee from now on.
    using OnConnection = std::function<void(int fd, sockaddr* peer)>;

    Acceptor(event_base* base, Pace pace, OnConnection on_connection);
    Acceptor(const Acceptor&) = delete;
    Acceptor& operator=(const Acceptor&) = delete;

    Status listen(std::vector<Fd> listeners);
    void stop();

private:
    static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int len, void* arg);
    static void on_accept_error(evconnlistener*, void* arg);
    void resume();

    event_base* base_;
    Pace pace_;
    OnConnection on_connection_;
    std::vector<event::Listener> listeners_;
    event::Watch resume_;
};

}  // namespace tern::net
