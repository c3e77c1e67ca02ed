// The qmgr socket (see control.hpp).
#include "qmgr/control.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <cstring>

#include "lib/log/log.hpp"

namespace tern::qmgr {

namespace {
constexpr size_t kMaxClients = 256;
constexpr uint32_t kMaxFrame = 64 * 1024;  // pokes are tiny
}  // namespace

ControlSocket::ControlSocket(event_base* base, std::vector<Fd> listeners, Scheduler& scheduler)
    : base_(base), listeners_(std::move(listeners)), scheduler_(scheduler) {
    reaper_ = event::timer(base_, [this](short) { closed_.clear(); });
    for (auto& l : listeners_) {
        int fd = l.get();
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        watches_.emplace_back(base_, fd, EV_READ | EV_PERSIST, [this, fd](short) { accept_on(fd); });
        watches_.back().add();
    }
}

void ControlSocket::close_listeners() {
    watches_.clear();
    listeners_.clear();
}

void ControlSocket::accept_on(int listen_fd) {
    for (int i = 0; i < 64; ++i) {
        int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log::warning("qmgr socket: accept: %s", std::strerror(errno));
            return;
        }
        Fd client(fd);
        if (clients_.size() >= kMaxClients) continue;  // closes it: a poke storm gains nothing
        uint64_t id = next_id_++;
        clients_.emplace(id, std::make_unique<ipc::Channel>(
                                 base_, std::move(client), [this, id](ipc::Message& m) { handle(id, m); },
                                 [this, id](const std::string&) {
                                     auto it = clients_.find(id);
                                     if (it == clients_.end()) return;
                                     closed_.push_back(std::move(it->second));
                                     clients_.erase(it);
                                     reaper_.activate();
                                 },
                                 kMaxFrame));
    }
}

void ControlSocket::handle(uint64_t id, ipc::Message& message) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    const std::string& type = message.type();
    // Only clients that ask get an answer: smtpd's persistent wake channel
    // sends and never reads.
    bool answer = message.get("reply").has_value();
    if (type == "wake" && message.get("id")) {
        std::vector<std::string> ids;
        for (auto id : message.get_all("id")) ids.emplace_back(id);
        scheduler_.arrived(std::move(ids));
    } else if (type == "wake" || type == "pickup") {
        scheduler_.wake();
    } else if (type == "flush") {
        scheduler_.flush();
    } else {
        log::warning("qmgr socket: unknown request '%s'", type.substr(0, 40).c_str());
        if (answer) it->second->send(ipc::Message("error").add("reason", "unknown request '" + type.substr(0, 40) + "'"));
        return;
    }
    if (answer) it->second->send(ipc::Message("ok"));
}

}  // namespace tern::qmgr
