// The qmgr socket: other processes poke the scheduler here.
//
//   "wake"    from smtpd after a commit, and from sendmail after a maildrop
//             write: new mail, look now (pickup included).  smtpd's wakes
//             name the messages it stored ("id" attributes): those are
//             activated without a scan of the queue or the maildrop.
//   "pickup"  the same, named for the maildrop.
//   "flush"   from `mailctl queue flush` / `sendmail -q`: everything due now.
//
// A request with a "reply" attribute is answered with "ok" (or "error"
// with a "reason") so a blocking client (mailctl, sendmail) can tell its
// poke arrived; others (smtpd's persistent channel) get no answer.  Peers are whoever may connect to the socket (its
// mode is set by master); the requests only make qmgr look sooner.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/event/loop.hpp"
#include "lib/ipc/channel.hpp"
#include "qmgr/scheduler.hpp"

namespace tern::qmgr {

class ControlSocket {
public:
    ControlSocket(event_base* base, std::vector<Fd> listeners, Scheduler& scheduler);
    void close_listeners();

private:
    void accept_on(int fd);
    void handle(uint64_t id, ipc::Message& message);

    event_base* base_;
    std::vector<Fd> listeners_;
    std::vector<event::Watch> watches_;
    Scheduler& scheduler_;
    std::map<uint64_t, std::unique_ptr<ipc::Channel>> clients_;
    std::vector<std::unique_ptr<ipc::Channel>> closed_;
    event::Watch reaper_;
    uint64_t next_id_ = 1;
};

}  // namespace tern::qmgr
