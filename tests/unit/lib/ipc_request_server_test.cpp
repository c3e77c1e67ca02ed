// Tests for lib/ipc/request_server: admitted and refused peers, numbered
// connections with their peer ids, drop from inside a handler, and the
// drop hook when the peer goes away.
#include <catch2/catch.hpp>

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "lib/event/loop.hpp"
#include "lib/ipc/message.hpp"
#include "lib/ipc/request_server.hpp"
#include "lib/net/listen.hpp"
#include "tests/unit/lib/loop_until.hpp"

using namespace tern;
using testing::run_until;

namespace {

struct SocketDir {
    std::string dir;
    SocketDir() {
        char tmpl[] = "/tmp/tern-request-server-test-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
    }
    ~SocketDir() { std::filesystem::remove_all(dir); }
    std::vector<Fd> listener() {
        auto l = net::listen_unix(dir + "/service.sock");
        REQUIRE(l.ok());
        std::vector<Fd> v;
        v.push_back(std::move(*l));
        return v;
    }
    Fd connect() {
        auto c = ipc::connect_unix(dir + "/service.sock");
        REQUIRE(c.ok());
        return std::move(*c);
    }
};

bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
}

ipc::PeerPolicy allowing(uid_t uid) { return ipc::PeerPolicy{"test socket", "test_peer_users", {uid}}; }

}  // namespace

TEST_CASE("ipc: a RequestServer numbers admitted peers and can drop one from its handler", "[ipc]") {
    auto base = event::make_base();
    SocketDir sockets;
    struct Seen {
        int messages = 0;
    };
    std::vector<std::string> got;
    std::vector<uint64_t> dropped;
    std::unique_ptr<ipc::RequestServer<Seen>> server;
    server = std::make_unique<ipc::RequestServer<Seen>>(
        base.get(), sockets.listener(), allowing(::getuid()), 1024,
        [&](uint64_t conn, ipc::Message& m) {
            auto& c = (*server)[conn];
            CHECK(c.uid == ::getuid());
            CHECK(c.pid == ::getpid());
            ++c.state.messages;
            got.push_back(m.type() + " on " + std::to_string(conn));
            c.channel->send(ipc::Message("answer").add_int("seen", c.state.messages));
            if (m.type() == "last") server->drop(conn);
        },
        [&](uint64_t conn) { dropped.push_back(conn); });

    Fd first = sockets.connect();
    REQUIRE(ipc::send_message(first.get(), ipc::Message("hello")).ok());
    REQUIRE(run_until(base.get(), [&] { return readable(first.get()); }));
    auto answer = ipc::recv_message(first.get(), 1000);
    REQUIRE(answer.ok());
    auto seen = answer->get_int("seen");
    REQUIRE(seen.ok());
    CHECK(*seen == 1);
    REQUIRE(ipc::send_message(first.get(), ipc::Message("last")).ok());
    REQUIRE(run_until(base.get(), [&] { return got.size() == 2 && server->size() == 0; }));
    CHECK(got == std::vector<std::string>{"hello on 1", "last on 1"});
    CHECK(dropped == std::vector<uint64_t>{1});
    // An answer sent before the drop went out at once (Channel::send
    // writes when nothing is queued); then the connection is closed.
    auto last = ipc::recv_message(first.get(), 1000);
    REQUIRE(last.ok());
    auto seen_last = last->get_int("seen");
    REQUIRE(seen_last.ok());
    CHECK(*seen_last == 2);
    CHECK_FALSE(ipc::recv_message(first.get(), 1000).ok());

    // The next peer gets the next number; when it goes away the hook runs
    // and the table forgets it.
    Fd second = sockets.connect();
    REQUIRE(ipc::send_message(second.get(), ipc::Message("hello")).ok());
    REQUIRE(run_until(base.get(), [&] { return got.size() == 3; }));
    CHECK(got.back() == "hello on 2");
    CHECK(server->size() == 1);
    REQUIRE(server->find(2) != nullptr);
    CHECK(server->find(1) == nullptr);
    second.reset();
    REQUIRE(run_until(base.get(), [&] { return server->size() == 0; }));
    CHECK(dropped == std::vector<uint64_t>{1, 2});

    // After close_listeners nobody is accepted any more.
    server->close_listeners();
    CHECK_FALSE(ipc::connect_unix(sockets.dir + "/service.sock").ok());
}

TEST_CASE("ipc: a RequestServer closes connections from peers not allowed", "[ipc]") {
    auto base = event::make_base();
    SocketDir sockets;
    int messages = 0;
    ipc::RequestServer<> server(base.get(), sockets.listener(), allowing(::getuid() + 1), 1024,
                                [&](uint64_t, ipc::Message&) { ++messages; });
    Fd peer = sockets.connect();
    REQUIRE(ipc::send_message(peer.get(), ipc::Message("hello")).ok());
    REQUIRE(run_until(base.get(), [&] { return readable(peer.get()); }));
    CHECK_FALSE(ipc::recv_message(peer.get(), 1000).ok());  // EOF: refused
    CHECK(messages == 0);
    CHECK(server.size() == 0);
}
