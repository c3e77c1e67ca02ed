// smtp-client's service socket (see server.hpp).
#include "smtp-client/server.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "lib/delivery/request.hpp"
#include "lib/log/log.hpp"
#include "lib/sys/files.hpp"

namespace tern::smtpc {

Server::Server(event_base* base, std::vector<Fd> listeners, Agent& agent)
    : base_(base), listeners_(std::move(listeners)), agent_(agent) {
    sweeper_ = event::timer(base_, [this](short) {
        for (uint64_t id : closed_) channels_.erase(id);
        closed_.clear();
    });
    for (const auto& l : listeners_) {
        (void)sys::set_nonblocking(l.get());
        int fd = l.get();
        watches_.emplace_back(base_, fd, EV_READ | EV_PERSIST, [this, fd](short) { accept_from(fd); });
        watches_.back().add();
    }
}

void Server::stop() {
    watches_.clear();
    listeners_.clear();
    stopping_ = true;
}

void Server::close_later(uint64_t id) {
    closed_.push_back(id);
    sweeper_.activate();
}

void Server::accept_from(int listener) {
    for (int i = 0; i < 64; ++i) {
        int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) log::warning("accept: %s", std::strerror(errno));
            return;
        }
        uint64_t id = next_id_++;
        channels_[id] = std::make_unique<ipc::Channel>(
            base_, Fd(fd), [this, id](ipc::Message& m) { on_message(id, m); },
            [this, id](const std::string& reason) {
                if (!reason.empty()) log::warning("connection from qmgr: %s", reason.c_str());
                close_later(id);
            });
    }
}

void Server::on_message(uint64_t id, ipc::Message& message) {
    if (stopping_) {
        close_later(id);
        return;
    }
    if (message.type() != "deliver") {
        log::warning("unexpected \"%s\" message from qmgr; closing the connection", message.type().c_str());
        close_later(id);
        return;
    }
    auto request = delivery::decode_request(message);
    if (!request) {
        log::warning("bad delivery request from qmgr: %s; closing the connection", request.message().c_str());
        close_later(id);
        return;
    }
    if (request->inline_body) {
        // The Agent reads bodies from an fd (pread, sendfile-style chunks).
        auto fd = sys::memory_file("tern-queue-body", request->body_text);
        if (!fd) {
            log::warning("%s: cannot hold the message body: %s; closing the connection", request->queue_id.c_str(),
                         fd.message().c_str());
            close_later(id);
            return;
        }
        request->body = std::move(*fd);
        request->inline_body = false;
        request->body_text.clear();
    }
    agent_.deliver(std::move(*request), [this, id](delivery::Response response) {
        // qmgr may have given up (timeout) and closed: then nobody waits.
        auto it = channels_.find(id);
        if (it != channels_.end()) it->second->send(delivery::encode_response(response));
    });
}

}  // namespace tern::smtpc
