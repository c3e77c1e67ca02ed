// The local-delivery service socket: accepts qmgr's connections (the
// listening sockets come from master), reads "deliver" requests with
// ipc::Channel, runs the Agent and answers each with "result".  qmgr keeps a
// connection open for its next request (lib/delivery/transport.hpp); when
// we stop, the connections with nothing in progress are closed and a
// request that still arrives is not taken (qmgr sends it again elsewhere).
//
// Requests are delivered in batches: a request read is held until the loop
// has polled once more (a zero timer), so the requests of connections that
// arrived together are delivered together and share one group commit; while
// a batch runs, the next requests wait in their sockets and form the next
// batch.  A batch runs to completion inside the event callback: mailbox
// writes and |commands block this process, which is why master runs
// several local-delivery processes on the same socket (the kernel spreads
// the connections).  A malformed request closes the connection without an
// answer; qmgr then defers every recipient of it (lib/delivery contract).
#pragma once

#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/delivery/request.hpp"
#include "lib/event/loop.hpp"
#include "lib/ipc/channel.hpp"
#include "local-delivery/agent.hpp"

namespace tern::local {

class Server {
public:
    Server(event_base* base, std::vector<Fd> listeners, Agent& agent);
    void stop();        // no new connections or requests; closes idle connections
    void close_idle();  // those with no request waiting and no answer unsent
    size_t connections() const { return channels_.size(); }

private:
    void accept_from(int listener);
    void on_message(uint64_t id, ipc::Message& message);
    void run_batch();
    void sweep();

    event_base* base_;
    std::vector<Fd> listeners_;
    std::vector<event::Watch> watches_;
    Agent& agent_;
    std::map<uint64_t, std::unique_ptr<ipc::Channel>> channels_;
    std::vector<uint64_t> closed_;
    event::Watch sweeper_;
    std::vector<std::pair<uint64_t, delivery::Request>> batch_;  // connection id, request
    event::Watch batch_timer_;
    uint64_t next_id_ = 1;
    bool stopping_ = false;
};

}  // namespace tern::local
