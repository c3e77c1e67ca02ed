// Transport: one delivery agent service (local-delivery, smtp-client) as
// seen by qmgr — a UNIX socket, a concurrency limit, and the requests in
// flight.
//
// Each request travels on its own connection: connect, send "deliver" with
// the body fd, wait for the one "result", close.  The number of open
// connections is the concurrency.  Whatever happens to a request — an
// answer, a refused connection, a lost connection, a timeout — its outcome
// reaches the scheduler exactly once, always from the event loop (never from
// inside submit()), and a recipient the agent did not answer for is
// deferred: delivery is at-least-once, never lost.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lib/delivery/request.hpp"
#include "lib/event/loop.hpp"
#include "lib/ipc/channel.hpp"

namespace tern::qmgr {

class Transport {
public:
    // agent_answered: the results are the agent's own answer (and the agent
    // logged them), not qmgr's verdict on a failed conversation.
    using ResultHandler = std::function<void(const std::string& queue_id,
                                             const std::vector<delivery::RecipientResult>& results,
                                             bool agent_answered)>;

    Transport(event_base* base, std::string name, std::string socket_path, size_t concurrency,
              std::chrono::seconds timeout, ResultHandler on_result);
    ~Transport();

    const std::string& name() const { return name_; }
    void submit(delivery::Request request);
    size_t in_flight() const { return connections_.size(); }
    size_t waiting() const { return waiting_.size(); }

private:
    struct Connection;
    struct Finished {
        std::string queue_id;
        std::vector<delivery::RecipientResult> results;
        bool agent_answered = false;
    };

    void pump();
    void start(delivery::Request request);
    void finish(uint64_t id, std::vector<delivery::RecipientResult> results, bool agent_answered = false);
    void deliver_finished();
    static std::vector<delivery::RecipientResult> defer_all(const std::vector<uint32_t>& indexes,
                                                            const std::string& dsn, const std::string& text);

    event_base* base_;
    std::string name_;
    std::string socket_path_;
    size_t concurrency_;
    std::chrono::seconds timeout_;
    ResultHandler on_result_;
    std::deque<delivery::Request> waiting_;
    std::map<uint64_t, std::unique_ptr<Connection>> connections_;
    std::vector<std::unique_ptr<Connection>> closed_;  // freed outside their own callbacks
    std::vector<Finished> finished_;
    event::Watch reaper_;
    uint64_t next_id_ = 1;
};

}  // namespace tern::qmgr
