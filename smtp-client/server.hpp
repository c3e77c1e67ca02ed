// smtp-client's service socket: accepts qmgr's connections (the listening
// sockets come from master), reads one "deliver" request per connection
// with ipc::Channel, hands it to the Agent and answers with "result" when
// the Agent is done -- many requests are in progress at once, each on its
// own connection.  A malformed request closes the connection without an
// answer; qmgr then defers every recipient of it (lib/delivery contract).
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
    void close_listeners();
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
};

}  // namespace tern::smtpc
