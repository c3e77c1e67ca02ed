// The local-delivery service socket: see server.hpp.
#include "local-delivery/server.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "lib/delivery/request.hpp"
#include "lib/log/log.hpp"
#include "lib/sys/fault.hpp"
#include "lib/sys/files.hpp"

namespace tern::local {

Server::Server(event_base* base, std::vector<Fd> listeners, Agent& agent)
    : base_(base), listeners_(std::move(listeners)), agent_(agent) {
    // Channels are destroyed outside their own callbacks.
    sweeper_ = event::timer(base_, [this](short) { sweep(); });
    batch_timer_ = event::timer(base_, [this](short) { run_batch(); });
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
    close_idle();
}

void Server::close_idle() {
    std::set<uint64_t> waiting;
    for (const auto& entry : batch_) waiting.insert(entry.first);
    for (const auto& [id, channel] : channels_)
        if (!waiting.count(id) && !channel->sending()) closed_.push_back(id);
    if (!closed_.empty()) sweeper_.activate();
}

void Server::accept_from(int listener) {
    for (int i = 0; i < 64; ++i) {
        int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log::warning("accept: %s", std::strerror(errno));
            return;
        }
        uint64_t id = next_id_++;
        channels_[id] = std::make_unique<ipc::Channel>(
            base_, Fd(fd), [this, id](ipc::Message& m) { on_message(id, m); },
            [this, id](const std::string& reason) {
                if (!reason.empty()) log::warning("connection from qmgr: %s", reason.c_str());
                closed_.push_back(id);
                sweeper_.activate();
            });
    }
}

void Server::on_message(uint64_t id, ipc::Message& message) {
    auto it = channels_.find(id);
    if (it == channels_.end()) return;
    if (stopping_) {
        // No answer: qmgr sends the request again on a new connection
        // (lib/delivery/transport.hpp), to the process that replaces us.
        closed_.push_back(id);
        sweeper_.activate();
        return;
    }
    if (message.type() != "deliver") {
        log::warning("unexpected \"%s\" message from qmgr; closing the connection", message.type().c_str());
        closed_.push_back(id);
        sweeper_.activate();
        return;
    }
    auto request = delivery::decode_request(message);
    if (!request) {
        log::warning("bad delivery request from qmgr: %s; closing the connection", request.message().c_str());
        closed_.push_back(id);
        sweeper_.activate();
        return;
    }
    batch_.emplace_back(id, std::move(*request));
    if (batch_.size() == 1) batch_timer_.add_after_poll();
}

void Server::run_batch() {
    std::vector<std::pair<uint64_t, delivery::Request>> batch;
    batch.swap(batch_);
    std::vector<const delivery::Request*> requests;
    for (const auto& entry : batch) requests.push_back(&entry.second);
    std::vector<delivery::Response> responses = agent_.handle(requests);
    sys::fault_point("LOCAL_AFTER_WRITE");
    for (size_t i = 0; i < batch.size(); ++i) {
        auto it = channels_.find(batch[i].first);
        if (it != channels_.end()) it->second->send(delivery::encode_response(responses[i]));
    }
    // The connections stay open for qmgr's next requests.
}

void Server::sweep() {
    for (uint64_t id : closed_) channels_.erase(id);
    closed_.clear();
}

}  // namespace tern::local
