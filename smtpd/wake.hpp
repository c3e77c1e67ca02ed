// Wakes qmgr after a commit: one "wake" ipc::Message on a persistent,
// non-blocking connection to $run_directory/qmgr.sock.  Best effort: when
// qmgr is down or its socket busy the wake is dropped (qmgr also polls the
// queue), and several commits in one loop turn into one wake.
#pragma once

#include <memory>
#include <string>

#include "lib/event/loop.hpp"
#include "lib/ipc/channel.hpp"

namespace tern::smtpd {

class QmgrWake {
public:
    QmgrWake() = default;
    void init(event_base* base, std::string socket_path);
    // Asks for one wake soon (coalesced).
    void poke();

private:
    void send_now();
    event_base* base_ = nullptr;
    std::string path_;
    std::unique_ptr<ipc::Channel> channel_;
    event::Watch timer_;
};

}  // namespace tern::smtpd
