// Delivery agent connections: dispatch, concurrency, timeouts (see transport.hpp).
#include "qmgr/transport.hpp"

#include <algorithm>
#include <set>

#include "lib/log/log.hpp"

namespace tern::qmgr {

struct Transport::Connection {
    uint64_t id = 0;
    std::string queue_id;
    std::vector<uint32_t> indexes;
    std::unique_ptr<ipc::Channel> channel;
    event::Watch timer;
    bool done = false;
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

void Transport::submit(delivery::Request request) {
    waiting_.push_back(std::move(request));
    pump();
}

void Transport::pump() {
    while (!waiting_.empty() && connections_.size() < concurrency_) {
        delivery::Request request = std::move(waiting_.front());
        waiting_.pop_front();
        start(std::move(request));
    }
}

std::vector<delivery::RecipientResult> Transport::defer_all(const std::vector<uint32_t>& indexes,
                                                             const std::string& dsn, const std::string& text) {
    std::vector<delivery::RecipientResult> out;
    for (uint32_t i : indexes) out.push_back({i, delivery::Outcome::Deferred, dsn, text});
    return out;
}

void Transport::start(delivery::Request request) {
    auto conn = std::make_unique<Connection>();
    conn->id = next_id_++;
    conn->queue_id = request.queue_id;
    for (const auto& r : request.recipients) conn->indexes.push_back(r.index);
    uint64_t id = conn->id;
    Connection* raw = conn.get();
    connections_.emplace(id, std::move(conn));

    auto sock = ipc::connect_unix(socket_path_);
    if (!sock) {
        finish(id, defer_all(raw->indexes, "4.3.0",
                             "delivery agent " + name_ + " is not available (" + sock.message() + ")"));
        return;
    }
    raw->channel = std::make_unique<ipc::Channel>(
        base_, std::move(*sock),
        [this, id](ipc::Message& message) {
            auto it = connections_.find(id);
            if (it == connections_.end() || it->second->done) return;
            Connection& c = *it->second;
            if (message.type() != "result") {
                log::warning("%s: unexpected '%s' message from %s", c.queue_id.c_str(), message.type().c_str(),
                             name_.c_str());
                finish(id, defer_all(c.indexes, "4.3.0", "protocol error talking to " + name_));
                return;
            }
            auto response = delivery::decode_response(message);
            if (!response || response->queue_id != c.queue_id) {
                log::warning("%s: bad result from %s: %s", c.queue_id.c_str(), name_.c_str(),
                             response ? "queue id mismatch" : response.message().c_str());
                finish(id, defer_all(c.indexes, "4.3.0", "protocol error talking to " + name_));
                return;
            }
            // Only statuses for recipients we asked about count; a recipient
            // the agent left out is deferred, never assumed delivered.
            std::set<uint32_t> asked(c.indexes.begin(), c.indexes.end());
            std::vector<delivery::RecipientResult> results;
            for (auto& r : response->results)
                if (asked.erase(r.index)) results.push_back(std::move(r));
            for (uint32_t i : asked)
                results.push_back({i, delivery::Outcome::Deferred, "4.3.0", name_ + " gave no status for this recipient"});
            finish(id, std::move(results), asked.empty());
        },
        [this, id](const std::string& reason) {
            auto it = connections_.find(id);
            if (it == connections_.end() || it->second->done) return;
            std::string why = reason.empty() ? "connection closed" : reason;
            finish(id, defer_all(it->second->indexes, "4.3.0", "lost connection with " + name_ + " (" + why + ")"));
        });
    raw->timer = event::timer(base_, [this, id](short) {
        auto it = connections_.find(id);
        if (it == connections_.end() || it->second->done) return;
        finish(id, defer_all(it->second->indexes, "4.4.2", name_ + " did not answer in time"));
    });
    raw->timer.add(std::chrono::duration_cast<std::chrono::milliseconds>(timeout_));
    raw->channel->send(delivery::encode_request(request));
}

void Transport::finish(uint64_t id, std::vector<delivery::RecipientResult> results, bool agent_answered) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    it->second->done = true;
    finished_.push_back({it->second->queue_id, std::move(results), agent_answered});
    // The channel may be the caller of this function: free it later.
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

}  // namespace tern::qmgr
