// The accepting half of a request service: see request_server.hpp.
#include "lib/ipc/request_server.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "lib/sys/files.hpp"

namespace tern::ipc {
namespace {

constexpr int kAcceptsPerWake = 64;  // then the loop serves the connections it has

}  // namespace

PeerAcceptor::PeerAcceptor(event_base* base, std::vector<Fd> listeners, PeerPolicy policy, OnPeer on_peer)
    : listeners_(std::move(listeners)), policy_(std::move(policy)), on_peer_(std::move(on_peer)) {
    for (const auto& l : listeners_) {
        (void)sys::set_nonblocking(l.get());
        int fd = l.get();
        watches_.emplace_back(base, fd, EV_READ | EV_PERSIST, [this, fd](short) { accept_from(fd); });
        watches_.back().add();
    }
}

void PeerAcceptor::close() {
    watches_.clear();
    listeners_.clear();
}

void PeerAcceptor::accept_from(int listener) {
    for (int i = 0; i < kAcceptsPerWake; ++i) {
        int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) log::warning("accept: %s", std::strerror(errno));
            return;
        }
        Fd sock(fd);
        auto cred = peer_credentials(sock.get());
        if (!cred) {
            log::warning("%s: %s", policy_.socket_name.c_str(), cred.message().c_str());
            continue;
        }
        if (!policy_.allowed_uids.count(cred->uid)) {
            log::warning("refused connection from uid %d pid %d: not in %s", int(cred->uid), int(cred->pid),
                         policy_.allowed_key.c_str());
            continue;
        }
        on_peer_(std::move(sock), *cred);
    }
}

}  // namespace tern::ipc
