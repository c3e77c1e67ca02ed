// Tests for lib/net/acceptor and lib/event/session_set: connections handed
// over non-blocking with Nagle off, the one-per-wake-up pace, stop(), and
// finished sessions destroyed from the loop rather than at once.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <vector>

#include "lib/event/loop.hpp"
#include "lib/event/session_set.hpp"
#include "lib/net/acceptor.hpp"
#include "lib/net/address.hpp"
#include "lib/net/listen.hpp"
#include "tests/unit/lib/loop_until.hpp"

using namespace tern;
using testing::run_until;
using namespace std::chrono_literals;

namespace {

Fd connect_to(int port) {
    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto addr = net::parse_ip("127.0.0.1", port);
    REQUIRE(addr.ok());
    REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(sockaddr_in)) == 0);
    return client;
}

}  // namespace

TEST_CASE("net: the Acceptor hands over non-blocking TCP connections with Nagle off", "[net]") {
    auto base = event::make_base();
    auto sock = net::listen_tcp("127.0.0.1", 0);
    REQUIRE(sock.ok());
    int port = net::bound_port(sock->get());
    auto pace = GENERATE(net::Acceptor::Pace::AllReady, net::Acceptor::Pace::OnePerWakeup);
    std::vector<Fd> accepted;
    std::vector<int> families;
    net::Acceptor acceptor(base.get(), pace, [&](int fd, sockaddr* peer) {
        accepted.emplace_back(fd);
        families.push_back(peer->sa_family);
    });
    std::vector<Fd> listeners;
    listeners.push_back(std::move(*sock));
    REQUIRE(acceptor.listen(std::move(listeners)).ok());

    Fd a = connect_to(port), b = connect_to(port), c = connect_to(port);
    REQUIRE(run_until(base.get(), [&] { return accepted.size() == 3; }));
    for (const auto& fd : accepted) {
        CHECK((::fcntl(fd.get(), F_GETFL) & O_NONBLOCK) != 0);
        int nodelay = 0;
        socklen_t len = sizeof nodelay;
        REQUIRE(::getsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) == 0);
        CHECK(nodelay != 0);
    }
    CHECK(families == std::vector<int>{AF_INET, AF_INET, AF_INET});

    // After stop() the socket is closed: nobody accepts any more.
    acceptor.stop();
    Fd late(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto addr = net::parse_ip("127.0.0.1", port);
    CHECK(::connect(late.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(sockaddr_in)) != 0);
}

TEST_CASE("net: with OnePerWakeup a burst is taken one connection per loop pass", "[net]") {
    auto base = event::make_base();
    auto sock = net::listen_tcp("127.0.0.1", 0);
    REQUIRE(sock.ok());
    int port = net::bound_port(sock->get());
    int accepted = 0;
    std::vector<Fd> keep;
    net::Acceptor acceptor(base.get(), net::Acceptor::Pace::OnePerWakeup, [&](int fd, sockaddr*) {
        keep.emplace_back(fd);
        ++accepted;
    });
    std::vector<Fd> listeners;
    listeners.push_back(std::move(*sock));
    REQUIRE(acceptor.listen(std::move(listeners)).ok());
    Fd a = connect_to(port), b = connect_to(port);
    // Both are queued in the kernel; the first pass takes only one.
    REQUIRE(run_until(base.get(), [&] { return accepted >= 1; }));
    CHECK(accepted == 1);
    REQUIRE(run_until(base.get(), [&] { return accepted == 2; }));
}

TEST_CASE("event: a SessionSet destroys finished sessions from the loop, not at once", "[event]") {
    auto base = event::make_base();
    struct Session {
        explicit Session(int* count) : destroyed(count) {}
        ~Session() { ++*destroyed; }
        int* destroyed;
    };
    int destroyed = 0;
    event::SessionSet<Session> sessions(base.get());
    Session* one = sessions.add(std::make_shared<Session>(&destroyed));
    Session* two = sessions.add(std::make_shared<Session>(&destroyed));
    CHECK(sessions.size() == 2);

    CHECK(sessions.finish(one));
    CHECK(sessions.size() == 1);
    CHECK(destroyed == 0);  // still alive: it may be inside its own callback
    CHECK_FALSE(sessions.finish(one));
    REQUIRE(run_until(base.get(), [&] { return destroyed == 1; }));

    sessions.clear();
    CHECK(destroyed == 2);
    CHECK_FALSE(sessions.finish(two));
}
