// Client connections from listening sockets: see acceptor.hpp.
#include "lib/net/acceptor.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cstring>
#include <string>

#include "lib/log/log.hpp"

namespace tern::net {

Acceptor::Acceptor(event_base* base, Pace pace, OnConnection on_connection)
    : base_(base), pace_(pace), on_connection_(std::move(on_connection)) {
    resume_ = event::timer(base, [this](short) { resume(); });
}

Status Acceptor::listen(std::vector<Fd> listeners) {
    for (auto& fd : listeners) {
        int flags = fcntl(fd.get(), F_GETFL);
        fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
        evconnlistener* l = evconnlistener_new(base_, &Acceptor::on_accept, this, LEV_OPT_CLOSE_ON_FREE, -1, fd.get());
        if (!l) return Error{"cannot listen on fd " + std::to_string(fd.get())};
        fd.release();
        evconnlistener_set_error_cb(l, &Acceptor::on_accept_error);
        listeners_.emplace_back(l);
    }
    return {};
}

void Acceptor::stop() {
    listeners_.clear();
    resume_.del();
}

void Acceptor::resume() {
    for (auto& l : listeners_) evconnlistener_enable(l.get());
}

void Acceptor::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
    auto* self = static_cast<Acceptor*>(arg);
    if (self->pace_ == Pace::OnePerWakeup) {
        for (auto& l : self->listeners_) evconnlistener_disable(l.get());
        if (!self->resume_.pending()) self->resume_.add(std::chrono::milliseconds(1));
    }
    // TCP_NODELAY comes from the listener (net::listen_tcp).
    evutil_make_socket_nonblocking(fd);
    self->on_connection_(fd, addr);
}

void Acceptor::on_accept_error(evconnlistener*, void*) {
    log::warning("accept: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

}  // namespace tern::net
