// Delivery agent connections: dispatch, reuse, concurrency, timeouts (see transport.hpp).
#include "lib/delivery/transport.hpp"

#include <algorithm>
#include <optional>
#include <set>

#include "lib/log/log.hpp"

namespace tern::delivery {

struct Transport::Connection {
    uint64_t id = 0;
    std::unique_ptr<ipc::Channel> channel;
    event::Watch timer;  // the answer's deadline while busy, the idle limit otherwise
    bool busy = false;
    uint64_t answered = 0;  // requests answered on this connection
    std::string queue_id;
    std::vector<uint32_t> indexes;
    std::optional<Pending> pending;  // kept to send again (transport.hpp)
};

Transport::Transport(event_base* base, std::string name, std::string socket_path, size_t concurrency,
                     std::chrono::seconds timeout, ResultHandler on_result)
    : base_(base),
      name_(std::move(name)),
      socket_path_(std::move(socket_path)),
      concurrency_(std::max<size_t>(1, concurrency)),
      timeout_(timeout),
      on_result_(std::move(on_result)) {
    reaper_ = event::timer(base_, [this](short) { deliver_finished(); });
}

Transport::~Transport() = default;

void Transport::submit(Request request) {
    waiting_.push_back(Pending{std::move(request)});
    pump();
}

void Transport::pump() {
    while (!waiting_.empty() && busy_ < concurrency_) {
        Pending next = std::move(waiting_.front());
        waiting_.pop_front();
        start(std::move(next));
    }
}

std::vector<RecipientResult> Transport::defer_all(const std::vector<uint32_t>& indexes, const std::string& dsn,
                                                  const std::string& text) {
    std::vector<RecipientResult> out;
    for (uint32_t i : indexes) out.push_back({i, Outcome::Deferred, dsn, text});
    return out;
}

void Transport::start(Pending pending) {
    Connection* c = nullptr;
    // A request sent again goes on a new connection: the idle ones may lead
    // to the same stopping agent.
    if (!pending.resent && !idle_.empty()) {
        c = connections_.at(idle_.back()).get();
        idle_.pop_back();
    } else {
        std::string why;
        c = open_connection(why);
        if (!c) {
            std::vector<uint32_t> indexes;
            for (const auto& r : pending.request.recipients) indexes.push_back(r.index);
            finished_.push_back({pending.request.queue_id,
                                 defer_all(indexes, "4.3.0", "delivery agent " + name_ + " is not available (" + why + ")"),
                                 false});
            reaper_.activate();
            return;
        }
    }
    c->busy = true;
    ++busy_;
    c->queue_id = pending.request.queue_id;
    c->indexes.clear();
    for (const auto& r : pending.request.recipients) c->indexes.push_back(r.index);
    c->timer.add(std::chrono::duration_cast<std::chrono::milliseconds>(timeout_));
    c->channel->send(encode_request(pending.request));
    c->pending = std::move(pending);
}

Transport::Connection* Transport::open_connection(std::string& why) {
    auto sock = ipc::connect_unix(socket_path_);
    if (!sock) {
        why = sock.message();
        return nullptr;
    }
    ++connects_;
    auto conn = std::make_unique<Connection>();
    uint64_t id = conn->id = next_id_++;
    conn->channel = std::make_unique<ipc::Channel>(
        base_, std::move(*sock), [this, id](ipc::Message& message) { on_message(id, message); },
        [this, id](const std::string& reason) { on_closed(id, reason); });
    conn->timer = event::timer(base_, [this, id](short) {
        auto it = connections_.find(id);
        if (it == connections_.end()) return;
        if (it->second->busy)
            finish(*it->second, defer_all(it->second->indexes, "4.4.2", name_ + " did not answer in time"), false);
        drop(id);
    });
    Connection* raw = conn.get();
    connections_.emplace(id, std::move(conn));
    return raw;
}

void Transport::on_message(uint64_t id, ipc::Message& message) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    Connection& c = *it->second;
    if (!c.busy) {
        log::warning("unexpected '%s' message from %s on an idle connection", message.type().c_str(), name_.c_str());
        drop(id);
        return;
    }
    if (message.type() != "result") {
        log::warning("%s: unexpected '%s' message from %s", c.queue_id.c_str(), message.type().c_str(), name_.c_str());
        finish(c, defer_all(c.indexes, "4.3.0", "protocol error talking to " + name_), false);
        drop(id);
        return;
    }
    auto response = decode_response(message);
    if (!response || response->queue_id != c.queue_id) {
        log::warning("%s: bad result from %s: %s", c.queue_id.c_str(), name_.c_str(),
                     response ? "queue id mismatch" : response.message().c_str());
        finish(c, defer_all(c.indexes, "4.3.0", "protocol error talking to " + name_), false);
        drop(id);
        return;
    }
    // Only statuses for recipients we asked about count; a recipient the
    // agent left out is deferred, never assumed delivered.
    std::set<uint32_t> asked(c.indexes.begin(), c.indexes.end());
    std::vector<RecipientResult> results;
    for (auto& r : response->results)
        if (asked.erase(r.index)) results.push_back(std::move(r));
    for (uint32_t i : asked)
        results.push_back({i, Outcome::Deferred, "4.3.0", name_ + " gave no status for this recipient"});
    finish(c, std::move(results), asked.empty());
    ++c.answered;
    c.timer.add(std::chrono::duration_cast<std::chrono::milliseconds>(kIdleLimit));
    idle_.push_back(id);
}

void Transport::on_closed(uint64_t id, const std::string& reason) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    Connection& c = *it->second;
    if (c.busy && c.answered > 0 && !c.pending->resent) {
        log::info("%s: %s closed a reused connection before answering; sending the request again", c.queue_id.c_str(),
                  name_.c_str());
        Pending again = std::move(*c.pending);
        again.resent = true;
        c.pending.reset();
        c.busy = false;
        --busy_;
        waiting_.push_front(std::move(again));
        reaper_.activate();  // pump() from the loop
    } else if (c.busy) {
        std::string why = reason.empty() ? "connection closed" : reason;
        finish(c, defer_all(c.indexes, "4.3.0", "lost connection with " + name_ + " (" + why + ")"), false);
    }
    drop(id);
}

void Transport::finish(Connection& c, std::vector<RecipientResult> results, bool agent_answered) {
    finished_.push_back({c.queue_id, std::move(results), agent_answered});
    c.busy = false;
    --busy_;
    c.pending.reset();
    c.timer.del();
    reaper_.activate();
}

void Transport::drop(uint64_t id) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    std::erase(idle_, id);
    // The channel may be the caller of this function: free it later.
    it->second->timer.del();
    closed_.push_back(std::move(it->second));
    connections_.erase(it);
    reaper_.activate();
}

void Transport::deliver_finished() {
    closed_.clear();
    std::vector<Finished> done;
    done.swap(finished_);
    for (auto& f : done) on_result_(f.queue_id, f.results, f.agent_answered);
    pump();
}

}  // namespace tern::delivery
