// Tests for lib/delivery/transport: qmgr's side of the delivery protocol
// keeps a connection for the next request, survives an agent that closes
// idle connections, sends a request again when a reused connection closes
// unanswered (an agent stopping), and defers when a new one does.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lib/delivery/request.hpp"
#include "lib/delivery/transport.hpp"
#include "lib/event/loop.hpp"
#include "lib/ipc/channel.hpp"
#include "lib/net/listen.hpp"
#include "tests/unit/lib/loop_until.hpp"

using namespace tern;
using testing::run_until;

namespace {

// A delivery agent on a UNIX socket that answers "delivered" to every
// request, or closes the connection instead when told to.
struct FakeAgent {
    std::string dir;
    std::string path;
    Fd listener;
    event::Watch accept_watch;
    std::map<int, std::unique_ptr<ipc::Channel>> channels;
    std::vector<int> to_close;
    event::Watch sweeper;
    int accepted = 0;
    int requests = 0;
    bool close_instead_of_answer = false;

    explicit FakeAgent(event_base* base) {
        char tmpl[] = "/tmp/tern-transport-test-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        path = dir + "/agent.sock";
        auto l = net::listen_unix(path);
        REQUIRE(l.ok());
        listener = std::move(*l);
        sweeper = event::timer(base, [this](short) {
            for (int id : to_close) channels.erase(id);
            to_close.clear();
        });
        accept_watch = event::Watch(base, listener.get(), EV_READ | EV_PERSIST, [this, base](short) {
            int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd < 0) return;
            int id = ++accepted;
            channels[id] = std::make_unique<ipc::Channel>(
                base, Fd(fd), [this, id](ipc::Message& m) { on_request(id, m); },
                [this, id](const std::string&) { close(id); });
        });
        accept_watch.add();
    }
    ~FakeAgent() { std::filesystem::remove_all(dir); }

    void on_request(int id, ipc::Message& m) {
        ++requests;
        auto request = delivery::decode_request(m);
        REQUIRE(request.ok());
        if (close_instead_of_answer) {
            close(id);
            return;
        }
        delivery::Response response;
        response.queue_id = request->queue_id;
        for (const auto& r : request->recipients)
            response.results.push_back({r.index, delivery::Outcome::Delivered, "2.0.0", "delivered"});
        channels.at(id)->send(delivery::encode_response(response));
    }
    void close(int id) {
        to_close.push_back(id);
        sweeper.activate();
    }
    void close_all() {
        for (const auto& [id, channel] : channels) close(id);
    }
};

struct Outcome {
    std::string queue_id;
    delivery::Outcome outcome;
    std::string dsn;
    bool agent_answered;
};

delivery::Request request_for(const std::string& queue_id) {
    delivery::Request r;
    r.queue_id = queue_id;
    r.sender = "a@example.org";
    r.nexthop = "local";
    r.recipients.push_back({0, "b@example.org", "", 0});
    int fds[2];
    REQUIRE(::pipe(fds) == 0);  // any fd serves as the body here
    r.body = Fd(fds[0]);
    ::close(fds[1]);
    return r;
}

}  // namespace

TEST_CASE("transport: requests reuse one connection; an agent's close of idle or stopping connections loses nothing",
          "[delivery]") {
    auto base = event::make_base();
    FakeAgent agent(base.get());
    std::vector<Outcome> outcomes;
    delivery::Transport transport(base.get(), "local-delivery", agent.path, 4, std::chrono::seconds(30),
                                  [&](const std::string& id, const std::vector<delivery::RecipientResult>& results,
                                      bool answered) {
                                      REQUIRE(results.size() == 1);
                                      outcomes.push_back({id, results[0].outcome, results[0].dsn, answered});
                                  });

    // One request after another: one connection.
    for (int i = 1; i <= 3; ++i) {
        transport.submit(request_for("Q" + std::to_string(i)));
        REQUIRE(run_until(base.get(), [&] { return outcomes.size() == size_t(i); }));
        CHECK(outcomes.back().outcome == delivery::Outcome::Delivered);
        CHECK(outcomes.back().agent_answered);
    }
    CHECK(transport.connects() == 1);
    CHECK(agent.accepted == 1);
    CHECK(transport.idle_connections() == 1);
    CHECK(transport.in_flight() == 0);

    // The agent closes its idle connection (a restart): the next request
    // goes on a new connection and is delivered.
    agent.close_all();
    REQUIRE(run_until(base.get(), [&] { return transport.idle_connections() == 0; }));
    transport.submit(request_for("Q4"));
    REQUIRE(run_until(base.get(), [&] { return outcomes.size() == 4; }));
    CHECK(outcomes.back().outcome == delivery::Outcome::Delivered);
    CHECK(transport.connects() == 2);

    // The agent is stopping: it closes a reused connection instead of
    // answering.  The request is sent again, once, on a new connection --
    // where this agent closes it too, so it is deferred, not lost.
    agent.close_instead_of_answer = true;
    int requests_before = agent.requests;
    transport.submit(request_for("Q5"));
    REQUIRE(run_until(base.get(), [&] { return outcomes.size() == 5; }));
    CHECK(agent.requests == requests_before + 2);
    CHECK(transport.connects() == 3);
    CHECK(outcomes.back().queue_id == "Q5");
    CHECK(outcomes.back().outcome == delivery::Outcome::Deferred);
    CHECK(outcomes.back().dsn == "4.3.0");
    CHECK_FALSE(outcomes.back().agent_answered);
    CHECK(transport.in_flight() == 0);

    // A stopping agent replaced by a working one: the request sent again
    // is delivered.
    agent.close_instead_of_answer = false;
    transport.submit(request_for("Q6"));
    REQUIRE(run_until(base.get(), [&] { return outcomes.size() == 6; }));
    agent.close_instead_of_answer = true;
    transport.submit(request_for("Q7"));
    REQUIRE(run_until(base.get(), [&] { return agent.requests == requests_before + 4; }));
    agent.close_instead_of_answer = false;
    REQUIRE(run_until(base.get(), [&] { return outcomes.size() == 7; }));
    CHECK(outcomes.back().queue_id == "Q7");
    CHECK(outcomes.back().outcome == delivery::Outcome::Delivered);
}

TEST_CASE("transport: no agent listening defers the request", "[delivery]") {
    auto base = event::make_base();
    std::vector<Outcome> outcomes;
    delivery::Transport transport(base.get(), "local-delivery", "/nonexistent/tern-agent.sock", 4,
                                  std::chrono::seconds(30),
                                  [&](const std::string& id, const std::vector<delivery::RecipientResult>& results,
                                      bool answered) {
                                      outcomes.push_back({id, results.at(0).outcome, results.at(0).dsn, answered});
                                  });
    transport.submit(request_for("Q1"));
    CHECK(outcomes.empty());  // never from inside submit()
    REQUIRE(run_until(base.get(), [&] { return outcomes.size() == 1; }));
    CHECK(outcomes[0].outcome == delivery::Outcome::Deferred);
    CHECK(outcomes[0].dsn == "4.3.0");
    CHECK(transport.in_flight() == 0);
}
