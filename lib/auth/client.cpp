// auth::Client: asynchronous credential checks against the auth daemon over
// one lib/ipc Channel; see client.hpp.  Every check owns a timer: the
// timeout, or an immediate tempfail when the daemon cannot be reached, so
// that a callback never runs from inside check().
#include "lib/auth/client.hpp"

#include <map>

#include "lib/event/loop.hpp"
#include "lib/ipc/channel.hpp"
#include "lib/ipc/message.hpp"

namespace tern::auth {

const char* outcome_name(Outcome o) {
    switch (o) {
    case Outcome::ok: return "ok";
    case Outcome::fail: return "fail";
    case Outcome::tempfail: return "tempfail";
    }
    return "tempfail";
}

struct Client::State {
    event_base* base;
    std::string path;
    std::chrono::milliseconds timeout;
    std::unique_ptr<ipc::Channel> channel;
    struct Pending {
        Callback callback;
        event::Watch timer;
        Answer early;  // the answer an immediate timer delivers
        bool immediate = false;
    };
    std::map<Ticket, Pending> pending;
    Ticket next = 1;

    void deliver(Ticket id, const Answer& answer) {
        auto it = pending.find(id);
        if (it == pending.end()) return;
        Callback cb = std::move(it->second.callback);
        pending.erase(it);  // may destroy the Watch whose callback runs us: touch nothing after
        if (cb) cb(answer);
    }

    static Answer tempfail(std::string reason) {
        Answer a;
        a.outcome = Outcome::tempfail;
        a.reason = std::move(reason);
        return a;
    }

    void on_message(ipc::Message& m) {
        if (m.type() != "auth-answer") return;
        auto id = m.get_int("id");
        if (!id || *id <= 0) return;
        Answer a;
        std::string outcome = m.get_or("outcome", "tempfail");
        a.outcome = outcome == "ok" ? Outcome::ok : outcome == "fail" ? Outcome::fail : Outcome::tempfail;
        a.user = m.get_or("user", "");
        a.system_user = m.get_or("system", "0") == "1";
        if (auto uid = m.get_int("uid"); uid && *uid >= 0) a.uid = static_cast<uid_t>(*uid);
        if (auto gid = m.get_int("gid"); gid && *gid >= 0) a.gid = static_cast<gid_t>(*gid);
        a.home = m.get_or("home", "");
        a.mail = m.get_or("mail", "");
        if (auto q = m.get_int("quota"); q && *q > 0) a.quota = static_cast<uint64_t>(*q);
        a.login_ticket = m.get_or("ticket", "");
        a.reason = m.get_or("reason", "");
        if (auto d = m.get_int("delay"); d && *d > 0) a.delay = std::chrono::milliseconds(*d);
        deliver(static_cast<Ticket>(*id), a);
    }

    void on_close(const std::string& reason) {
        // Inside the channel's own handler: Channel allows being destroyed here.
        channel.reset();
        std::vector<Ticket> ids;
        for (const auto& [id, p] : pending)
            if (!p.immediate) ids.push_back(id);
        std::string why = "auth service closed the connection" + (reason.empty() ? "" : ": " + reason);
        for (Ticket id : ids) deliver(id, tempfail(why));
    }

    std::string connect() {
        if (channel && !channel->closed()) return "";
        channel.reset();
        auto sock = ipc::connect_unix(path);
        if (!sock) return sock.message();
        channel = std::make_unique<ipc::Channel>(
            base, std::move(*sock), [this](ipc::Message& m) { on_message(m); },
            [this](const std::string& r) { on_close(r); }, 64 * 1024);
        return "";
    }
};

Client::Client(event_base* base, std::string socket_path, std::chrono::milliseconds timeout)
    : state_(std::make_unique<State>()) {
    state_->base = base;
    state_->path = std::move(socket_path);
    state_->timeout = timeout;
}

Client::~Client() = default;

Client::Ticket Client::check(const Request& request, Callback callback) {
    State& s = *state_;
    Ticket id = s.next++;
    State::Pending& p = s.pending[id];
    p.callback = std::move(callback);
    State* sp = state_.get();
    p.timer = event::timer(s.base, [sp, id](short) {
        auto it = sp->pending.find(id);
        if (it == sp->pending.end()) return;
        Answer a = it->second.immediate ? it->second.early : State::tempfail("auth service did not answer in time");
        sp->deliver(id, a);
    });
    std::string failure = s.connect();
    if (!failure.empty()) {
        p.immediate = true;
        p.early = State::tempfail("auth service unavailable: " + failure);
        p.timer.activate();
        return id;
    }
    ipc::Message m("auth-check");
    m.add_int("id", static_cast<int64_t>(id));
    m.add("mechanism", request.mechanism);
    m.add("authzid", request.credentials.authzid);
    m.add("user", request.credentials.authcid);
    m.add("password", request.credentials.password);
    m.add("rip", request.client_ip);
    m.add("service", request.service);
    m.add("secured", request.secured ? "1" : "0");
    s.channel->send(m);
    p.timer.add(s.timeout);
    return id;
}

void Client::cancel(Ticket ticket) { state_->pending.erase(ticket); }

size_t Client::pending() const { return state_->pending.size(); }

}  // namespace tern::auth
