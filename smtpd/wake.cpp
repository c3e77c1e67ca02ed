// qmgr wake-up (see wake.hpp).
#include "smtpd/wake.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "lib/ipc/message.hpp"
#include "lib/log/log.hpp"

namespace tern::smtpd {
namespace {

// qmgr's socket takes frames of up to 64 KiB; an id attribute is ~30 bytes.
constexpr size_t kMaxIdsPerWake = 1000;

}  // namespace

void QmgrWake::init(event_base* base, std::string socket_path) {
    base_ = base;
    path_ = std::move(socket_path);
    timer_ = event::timer(base_, [this](short) { send_now(); });
}

void QmgrWake::poke(std::vector<std::string> ids) {
    if (!base_) return;
    if (ids.empty() || ids_.size() + ids.size() > kMaxIdsPerWake) {
        scan_ = true;
        ids_.clear();
    } else if (!scan_) {
        ids_.insert(ids_.end(), std::make_move_iterator(ids.begin()), std::make_move_iterator(ids.end()));
    }
    if (!timer_.pending()) timer_.add(std::chrono::milliseconds(1));
}

void QmgrWake::send_now() {
    // Taken now: a wake that cannot be sent is dropped with its ids (qmgr's
    // start and its periodic scan find those messages).
    ipc::Message wake("wake");
    if (!scan_)
        for (const auto& id : ids_) wake.add("id", id);
    ids_.clear();
    scan_ = false;
    if (channel_ && channel_->closed()) channel_.reset();
    if (!channel_) {
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        if (path_.size() >= sizeof sun.sun_path) return;
        std::memcpy(sun.sun_path, path_.c_str(), path_.size() + 1);
        Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!sock) return;
        // Non-blocking: a full backlog (EAGAIN) or a missing qmgr just drops this wake.
        if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
            log::debug("qmgr wake: connect %s: %s", path_.c_str(), std::strerror(errno));
            return;
        }
        channel_ = std::make_unique<ipc::Channel>(
            base_, std::move(sock), [](ipc::Message&) {},
            [this](const std::string& reason) {
                if (!reason.empty()) log::debug("qmgr wake: connection closed: %s", reason.c_str());
            });
    }
    channel_->send(wake);
}

}  // namespace tern::smtpd
