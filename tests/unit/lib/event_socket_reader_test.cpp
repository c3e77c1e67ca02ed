// Tests for lib/event/socket_reader: large reads into a bufferevent's input,
// the pause at max_unread and resume(), end of file, and the idle timeout.
#include <catch2/catch.hpp>

#include <event2/buffer.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/event/loop.hpp"
#include "lib/event/socket_reader.hpp"
#include "tests/unit/lib/loop_until.hpp"

using namespace tern;
using testing::run_until;
using What = event::SocketReader::What;

namespace {

struct Pair {
    event::Base base = event::make_base();
    Fd peer;
    int fd = -1;
    event::BufferEvent bev;
    Pair() {
        int sp[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) == 0);
        fd = sp[0];
        peer = Fd(sp[1]);
        bev.reset(bufferevent_socket_new(base.get(), fd, BEV_OPT_CLOSE_ON_FREE));
        REQUIRE(bev);
    }
    evbuffer* input() { return bufferevent_get_input(bev.get()); }
    void send(const std::string& bytes) {
        size_t off = 0;
        while (off < bytes.size()) {
            ssize_t n = ::write(peer.get(), bytes.data() + off, bytes.size() - off);
            if (n > 0) off += static_cast<size_t>(n);
            else event_base_loop(base.get(), EVLOOP_NONBLOCK);  // let the reader drain the socket
        }
    }
};

}  // namespace

TEST_CASE("socket reader: takes what a socket holds in large pieces, then end of file", "[event]") {
    Pair p;
    std::vector<What> seen;
    std::string received;
    event::SocketReader reader(p.base.get(), p.fd, p.input(), 1 << 20, [&](What w) {
        seen.push_back(w);
        size_t n = evbuffer_get_length(p.input());
        std::string chunk(n, '\0');
        evbuffer_remove(p.input(), chunk.data(), n);
        received += chunk;
        return true;
    });
    reader.enable(std::chrono::seconds(30));
    std::string text(150 * 1024, 'x');
    for (size_t i = 0; i < text.size(); i += 97) text[i] = char('a' + i % 26);
    REQUIRE(::write(p.peer.get(), text.data(), 100 * 1024) == 100 * 1024);
    REQUIRE(run_until(p.base.get(), [&] { return received.size() == 100 * 1024; }));
    CHECK(seen.size() <= 2);  // not one wakeup per 4 KiB
    p.send(text.substr(100 * 1024));
    p.peer.reset();
    REQUIRE(run_until(p.base.get(), [&] { return !seen.empty() && seen.back() == What::Eof; }));
    CHECK(received == text);
}

TEST_CASE("socket reader: pauses at max_unread until resumed", "[event]") {
    Pair p;
    int data_calls = 0;
    event::SocketReader reader(p.base.get(), p.fd, p.input(), 8 * 1024, [&](What w) {
        if (w == What::Data) ++data_calls;
        return true;  // consumes nothing
    });
    reader.enable(std::chrono::seconds(30));
    std::string text(20 * 1024, 'y');
    REQUIRE(::write(p.peer.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    REQUIRE(run_until(p.base.get(), [&] { return evbuffer_get_length(p.input()) == 8 * 1024; }));
    int calls = data_calls;
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    run_until(p.base.get(), [&] { return std::chrono::steady_clock::now() > until; });  // nothing more is read
    CHECK(evbuffer_get_length(p.input()) == 8 * 1024);
    CHECK(data_calls == calls);
    evbuffer_drain(p.input(), 8 * 1024);
    reader.resume();
    REQUIRE(run_until(p.base.get(), [&] { return evbuffer_get_length(p.input()) == 8 * 1024; }));
}

TEST_CASE("socket reader: reports an idle timeout", "[event]") {
    Pair p;
    std::vector<What> seen;
    event::SocketReader reader(p.base.get(), p.fd, p.input(), 1 << 20, [&](What w) {
        seen.push_back(w);
        return true;
    });
    reader.enable(std::chrono::seconds(1));
    REQUIRE(run_until(p.base.get(), [&] { return !seen.empty(); }));
    CHECK(seen[0] == What::Timeout);
}
