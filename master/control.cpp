// master's control socket server: accepts mailctl connections and answers
// status / reload / stop requests.  See control.hpp for the protocol.
#include "lib/ipc/channel.hpp"  // first: see control.hpp
#include "master/control.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lib/log/log.hpp"

namespace tern::master {
namespace {

constexpr size_t kMaxClients = 64;
constexpr uint32_t kMaxRequest = 64 * 1024;

}  // namespace

ControlServer::ControlServer(event_base* base, Fd listener, ControlHandlers handlers)
    : base_(base), listener_(std::move(listener)), handlers_(std::move(handlers)) {
    int fl = fcntl(listener_.get(), F_GETFL);
    if (fl >= 0) fcntl(listener_.get(), F_SETFL, fl | O_NONBLOCK);
    accept_watch_ = event::Watch(base_, listener_.get(), EV_READ | EV_PERSIST,
                                 [this](short) { accept_clients(); });
    accept_watch_.add();
    sweep_timer_ = event::timer(base_, [this](short) { sweep(); });
}

ControlServer::~ControlServer() = default;

void ControlServer::accept_clients() {
    for (int rounds = 0; rounds < 16; ++rounds) {
        int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log::warning("control socket: accept: %s", std::strerror(errno));
            return;
        }
        Fd sock(fd);
        auto cred = ipc::peer_credentials(sock.get());
        if (!cred || (cred->uid != 0 && cred->uid != getuid())) {
            log::warning("control socket: refused connection from uid %d",
                         cred ? static_cast<int>(cred->uid) : -1);
            continue;
        }
        if (clients_.size() >= kMaxClients) {
            log::warning("control socket: too many clients, refusing one");
            continue;
        }
        auto* slot = &clients_.emplace_back();
        *slot = std::make_unique<ipc::Channel>(
            base_, std::move(sock),
            [this, slot](ipc::Message& m) { handle(**slot, m); },
            [this](const std::string& reason) {
                if (!reason.empty()) log::warning("control socket: %s", reason.c_str());
                // The channel cannot be destroyed inside its own callback.
                sweep_timer_.activate();
            },
            kMaxRequest);
    }
}

void ControlServer::handle(ipc::Channel& channel, ipc::Message& request) {
    const std::string& type = request.type();
    if (type == "status") {
        ipc::Message reply("status");
        handlers_.status(reply);
        channel.send(reply);
    } else if (type == "reload") {
        auto st = handlers_.reload();
        if (st) {
            channel.send(ipc::Message("ok"));
        } else {
            channel.send(ipc::Message("error").add("message", st.message()));
        }
    } else if (type == "stop") {
        channel.send(ipc::Message("ok").add_int("master_pid", getpid()));
        handlers_.stop();
    } else {
        channel.send(ipc::Message("error").add("message", "unknown request '" + type + "'"));
    }
}

void ControlServer::sweep() {
    clients_.remove_if([](const std::unique_ptr<ipc::Channel>& c) { return !c || c->closed(); });
}

}  // namespace tern::master
