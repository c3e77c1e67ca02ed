// smtp-client's service socket: accepts qmgr's connections (the listening
// sockets come from master), reads "deliver" requests with ipc::Channel,
// hands each to the Agent and answers with "result" when the Agent is done
// -- many requests are in progress at once, each on its own connection,
// which qmgr keeps open for its next request (lib/delivery/transport.hpp).
// A malformed request closes the connection without an answer; qmgr then
// defers every recipient of it (lib/delivery contract).  Once stopping, a
// new request closes its connection unanswered: qmgr sends it again to the
// process that replaces us.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/event/loop.hpp"
#include "lib/ipc/channel.hpp"
#include "smtp-client/agent.hpp"

namespace tern::smtpc {

class Server {
public:
    Server(event_base* base, std::vector<Fd> listeners, Agent& agent);
    void stop();  // no new connections or requests
    size_t connections() const { return channels_.size(); }

private:
    void accept_from(int listener);
    void on_message(uint64_t id, ipc::Message& message);
    void close_later(uint64_t id);

    event_base* base_;
    std::vector<Fd> listeners_;
    std::vector<event::Watch> watches_;
    Agent& agent_;
    std::map<uint64_t, std::unique_ptr<ipc::Channel>> channels_;
    std::vector<uint64_t> closed_;
    event::Watch sweeper_;
    uint64_t next_id_ = 1;
    bool stopping_ = false;
};

}  // namespace tern::smtpc
