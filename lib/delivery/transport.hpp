// Transport: one delivery agent service (local-delivery, smtp-client) as
// seen by its client, qmgr — a UNIX socket, a concurrency limit, and the
// requests in flight.
//
// A connection carries one request at a time: send "deliver" with the body
// fd, wait for the one "result".  After the answer the connection stays
// open and the next request reuses it (the most recently used first), so a
// busy agent does not pay a connect, an accept and a close per message; a
// connection idle for kIdleLimit is closed.  The number of busy connections
// is the concurrency.
//
// Whatever happens to a request — an answer, a refused connection, a lost
// connection, a timeout — its outcome reaches the caller exactly once,
// always from the event loop (never from inside submit()), and a recipient
// the agent did not answer for is deferred: delivery is at-least-once, never
// lost.  One exception to "lost means deferred": a reused connection that
// closes before any answer was most likely closed by an agent that was
// stopping as the request went out, so the request is sent once more, at
// once, on a new connection.  That is safe because a repeated request is
// recognised by the agent (docs/queue.md, "Idempotent delivery").
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

namespace tern::delivery {

class Transport {
public:
    // agent_answered: the results are the agent's own answer (and the agent
    // logged them), not the client's verdict on a failed conversation.
    using ResultHandler = std::function<void(const std::string& queue_id, const std::vector<RecipientResult>& results,
                                             bool agent_answered)>;
    static constexpr std::chrono::seconds kIdleLimit{30};

    Transport(event_base* base, std::string name, std::string socket_path, size_t concurrency,
              std::chrono::seconds timeout, ResultHandler on_result);
    ~Transport();

    const std::string& name() const { return name_; }
    void submit(Request request);
    size_t in_flight() const { return busy_; }
    size_t waiting() const { return waiting_.size(); }
    size_t idle_connections() const { return idle_.size(); }
    uint64_t connects() const { return connects_; }  // connections opened so far

private:
    struct Connection;
    struct Pending {
        Request request;
        bool resent = false;  // already sent once on a reused connection that closed
    };
    struct Finished {
        std::string queue_id;
        std::vector<RecipientResult> results;
        bool agent_answered = false;
    };

    void pump();
    void start(Pending pending);
    Connection* open_connection(std::string& why);  // nullptr (why set) when the agent is unreachable
    void on_message(uint64_t id, ipc::Message& message);
    void on_closed(uint64_t id, const std::string& reason);
    void finish(Connection& c, std::vector<RecipientResult> results, bool agent_answered);
    void drop(uint64_t id);
    void deliver_finished();
    static std::vector<RecipientResult> defer_all(const std::vector<uint32_t>& indexes, const std::string& dsn,
                                                  const std::string& text);

    event_base* base_;
    std::string name_;
    std::string socket_path_;
    size_t concurrency_;
    std::chrono::seconds timeout_;
    ResultHandler on_result_;
    std::deque<Pending> waiting_;
    std::map<uint64_t, std::unique_ptr<Connection>> connections_;  // busy and idle
    std::vector<uint64_t> idle_;                                   // most recently used last
    size_t busy_ = 0;
    std::vector<std::unique_ptr<Connection>> closed_;  // freed outside their own callbacks
    std::vector<Finished> finished_;
    event::Watch reaper_;
    uint64_t next_id_ = 1;
    uint64_t connects_ = 0;
};

}  // namespace tern::delivery
