// Wakes qmgr after a commit: one "wake" ipc::Message on a persistent,
// non-blocking connection to $run_directory/qmgr.sock.  Best effort: when
// qmgr is down or its socket busy the wake is dropped (qmgr also polls the
// queue), and the commits of one millisecond turn into one wake.
//
// The wake names the stored messages (one "id" attribute each), so that
// qmgr activates them without scanning its due index; a wake without ids
// (after a replayed log, or more ids than one wake carries) asks for a
// scan.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lib/event/loop.hpp"
#include "lib/ipc/channel.hpp"

namespace tern::smtpd {

class QmgrWake {
public:
    QmgrWake() = default;
    void init(event_base* base, std::string socket_path);
    // Asks for one wake soon (coalesced): for these messages, or, with no
    // ids, for a scan of the whole queue.
    void poke(std::vector<std::string> ids = {});

private:
    void send_now();
    std::vector<std::string> ids_;  // for the next wake
    bool scan_ = false;             // the next wake asks for a scan
    event_base* base_ = nullptr;
    std::string path_;
    std::unique_ptr<ipc::Channel> channel_;
    event::Watch timer_;
};

}  // namespace tern::smtpd
