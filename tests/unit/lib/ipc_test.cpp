// Tests for lib/ipc: frame encoding/decoding, hostile frames, fd passing,
// peer credentials, and Channel on a real libevent loop.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "lib/event/loop.hpp"
#include "lib/ipc/channel.hpp"
#include "lib/ipc/message.hpp"
#include "lib/ipc/socket_io.hpp"

using namespace tern;
using namespace tern::ipc;

namespace {

struct SocketPair {
    Fd a, b;
    SocketPair() {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        a.reset(fds[0]);
        b.reset(fds[1]);
    }
};

std::string header(uint32_t body_len, uint16_t nfds) {
    std::string h = "TRN1";
    for (int s = 24; s >= 0; s -= 8) h.push_back(static_cast<char>((body_len >> s) & 0xff));
    h.push_back(static_cast<char>(nfds >> 8));
    h.push_back(static_cast<char>(nfds & 0xff));
    return h;
}

std::string attr(std::string_view name, std::string_view value) {
    std::string out;
    out.push_back(static_cast<char>(name.size() >> 8));
    out.push_back(static_cast<char>(name.size() & 0xff));
    out.append(name);
    uint32_t n = static_cast<uint32_t>(value.size());
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((n >> s) & 0xff));
    out.append(value);
    return out;
}

// Decodes exactly one message from bytes, requiring success.
Message decode_one(const std::string& bytes) {
    Decoder d;
    d.feed(bytes);
    auto r = d.next();
    REQUIRE(r.ok());
    REQUIRE(r->has_value());
    return std::move(**r);
}

std::string decode_error(const std::string& bytes, uint32_t max = kDefaultMaxFrame, int fds = 0) {
    Decoder d(max);
    d.feed(bytes);
    for (int i = 0; i < fds; ++i) d.feed_fd(Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
    for (int i = 0; i < 4; ++i) {
        auto r = d.next();
        if (!r) {
            // Once failed, the decoder stays failed.
            auto again = d.next();
            CHECK_FALSE(again.ok());
            return r.message();
        }
        if (!r->has_value()) return "";
    }
    return "";
}

}  // namespace

TEST_CASE("ipc: message round trip keeps binary, empty and repeated values", "[ipc]") {
    std::string binary("a\0b\r\n\xff", 6);
    Message m("deliver");
    m.add("queue_id", "4XyZ01").add("empty", "").add("rcpt", "a@x").add("rcpt", "b@y");
    m.add("blob", binary).add_int("size", -42);
    Message out = decode_one(encode(m));
    CHECK(out.type() == "deliver");
    CHECK(out.get("queue_id") == std::optional<std::string_view>("4XyZ01"));
    REQUIRE(out.get("empty").has_value());
    CHECK(out.get("empty")->empty());
    CHECK(out.get("blob") == std::optional<std::string_view>(binary));
    auto rcpts = out.get_all("rcpt");
    REQUIRE(rcpts.size() == 2);
    CHECK(rcpts[0] == "a@x");
    CHECK(rcpts[1] == "b@y");
    REQUIRE(out.get_int("size").ok());
    CHECK(*out.get_int("size") == -42);
    CHECK_FALSE(out.get("missing").has_value());
    CHECK(out.get_or("missing", "dflt") == "dflt");
    CHECK_FALSE(out.get_int("missing").ok());
    CHECK_FALSE(out.get_int("queue_id").ok());  // not a number
    CHECK(out.attributes().size() == 6);
}

TEST_CASE("ipc: several frames in one feed and one frame split byte by byte", "[ipc]") {
    std::string bytes = encode(Message("one").add("k", "1")) + encode(Message("two")) +
                        encode(Message("three").add("k", std::string(1000, 'x')));
    SECTION("one feed") {
        Decoder d;
        d.feed(bytes);
        std::vector<std::string> types;
        for (;;) {
            auto r = d.next();
            REQUIRE(r.ok());
            if (!r->has_value()) break;
            types.push_back((*r)->type());
        }
        CHECK(types == std::vector<std::string>{"one", "two", "three"});
        CHECK(d.idle());
    }
    SECTION("byte by byte") {
        Decoder d;
        std::vector<std::string> types;
        for (char c : bytes) {
            d.feed(std::string_view(&c, 1));
            auto r = d.next();
            REQUIRE(r.ok());
            if (r->has_value()) types.push_back((*r)->type());
        }
        CHECK(types == std::vector<std::string>{"one", "two", "three"});
        CHECK(d.idle());
    }
}

TEST_CASE("ipc: hostile frames are rejected with a reason", "[ipc]") {
    std::string good = encode(Message("ping").add("a", "b"));
    std::string body = attr("type", "ping") + attr("a", "b");

    CHECK_THAT(decode_error("GET / HTTP/1.1\r\n"), Catch::Contains("magic"));
    CHECK_THAT(decode_error("X"), Catch::Contains("magic"));  // known bad after one byte
    CHECK_THAT(decode_error(header(5000, 0), 4096), Catch::Contains("exceeds"));
    CHECK_THAT(decode_error(header(0xffffffffu, 0)), Catch::Contains("exceeds"));
    CHECK_THAT(decode_error(header(0, 0)), Catch::Contains("type"));
    CHECK_THAT(decode_error(header(static_cast<uint32_t>(body.size()), kMaxFds + 1) + body),
               Catch::Contains("file descriptors"));
    // Attribute lengths pointing past the frame.
    std::string truncated = attr("type", "ping") + attr("a", "b");
    truncated[truncated.size() - 2] = 9;  // value length byte now 9 > 1 byte left
    CHECK_THAT(decode_error(header(static_cast<uint32_t>(truncated.size()), 0) + truncated),
               Catch::Contains("truncated"));
    CHECK_THAT(decode_error(header(1, 0) + "\x01"), Catch::Contains("truncated"));
    CHECK_THAT(decode_error(header(3, 0) + std::string("\x00\x05t", 3)), Catch::Contains("truncated"));
    // Structure errors.
    std::string no_type = attr("a", "b");
    CHECK_THAT(decode_error(header(static_cast<uint32_t>(no_type.size()), 0) + no_type), Catch::Contains("type"));
    std::string two_types = attr("type", "a") + attr("type", "b");
    CHECK_THAT(decode_error(header(static_cast<uint32_t>(two_types.size()), 0) + two_types),
               Catch::Contains("type"));
    std::string empty_name = attr("type", "a") + attr("", "b");
    CHECK_THAT(decode_error(header(static_cast<uint32_t>(empty_name.size()), 0) + empty_name),
               Catch::Contains("empty"));
    // fd count mismatches: announced but missing, and sent but not announced.
    CHECK_THAT(decode_error(header(static_cast<uint32_t>(body.size()), 1) + body), Catch::Contains("received 0"));
    CHECK_THAT(decode_error(good, kDefaultMaxFrame, 1), Catch::Contains("received 1"));
    CHECK_THAT(decode_error("", kDefaultMaxFrame, 1), Catch::Contains("without a frame"));
    // The untouched frame is fine (the cases above fail for their reason).
    CHECK(decode_error(good).empty());
}

TEST_CASE("ipc: fds travel with the frame over a socketpair", "[ipc]") {
    SocketPair sp;
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    Fd pipe_read(pipe_fds[0]);
    Message m("body");
    m.add("queue_id", "Q1");
    m.attach_fd(Fd(pipe_fds[1]));
    REQUIRE(send_message(sp.a.get(), m).ok());
    CHECK(m.fds()[0].valid());  // not consumed by sending
    m.fds().clear();            // close our write end: only the received copy remains

    auto got = recv_message(sp.b.get(), 2000);
    REQUIRE(got.ok());
    CHECK(got->type() == "body");
    REQUIRE(got->fds().size() == 1);
    Fd received = got->take_fd(0);
    REQUIRE(received.valid());
    CHECK((::fcntl(received.get(), F_GETFD) & FD_CLOEXEC) != 0);
    CHECK_FALSE(got->take_fd(5).valid());
    REQUIRE(::write(received.get(), "through", 7) == 7);
    received.reset();
    char buf[16] = {};
    CHECK(::read(pipe_read.get(), buf, sizeof buf) == 7);
    CHECK(std::string(buf) == "through");
}

TEST_CASE("ipc: recv_message takes one frame at a time and times out", "[ipc]") {
    SocketPair sp;
    REQUIRE(send_message(sp.a.get(), Message("first")).ok());
    REQUIRE(send_message(sp.a.get(), Message("second").add("x", std::string(200000, 'y'))).ok());
    auto one = recv_message(sp.b.get(), 2000);
    REQUIRE(one.ok());
    CHECK(one->type() == "first");
    auto two = recv_message(sp.b.get(), 2000);
    REQUIRE(two.ok());
    CHECK(two->type() == "second");
    CHECK(two->get("x")->size() == 200000);

    auto none = recv_message(sp.b.get(), 50);
    REQUIRE_FALSE(none.ok());
    CHECK_THAT(none.message(), Catch::Contains("timed out"));

    REQUIRE(::write(sp.a.get(), "TRN1\0\0", 6) == 6);
    sp.a.reset();
    auto cut = recv_message(sp.b.get(), 2000);
    REQUIRE_FALSE(cut.ok());
    CHECK_THAT(cut.message(), Catch::Contains("mid-frame"));
}

TEST_CASE("ipc: frames over a socket with wrong fd counts are refused", "[ipc]") {
    std::string body = attr("type", "x");
    SECTION("announced two, sent one") {
        SocketPair sp;
        std::string frame = header(static_cast<uint32_t>(body.size()), 2) + body;
        int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        REQUIRE(detail::send_with_fds(sp.a.get(), frame.data(), frame.size(), &devnull, 1) ==
                static_cast<ssize_t>(frame.size()));
        ::close(devnull);
        auto r = recv_message(sp.b.get(), 2000);
        REQUIRE_FALSE(r.ok());
        CHECK_THAT(r.message(), Catch::Contains("announces 2"));
    }
    SECTION("more than kMaxFds in one sendmsg") {
        SocketPair sp;
        std::string frame = header(static_cast<uint32_t>(body.size()), 0) + body;
        constexpr int n = kMaxFds + 4;
        int fds[n];
        for (int& fd : fds) fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
        iovec iov{frame.data(), frame.size()};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof fds);
        std::memcpy(CMSG_DATA(c), fds, sizeof fds);
        REQUIRE(::sendmsg(sp.a.get(), &msg, 0) == static_cast<ssize_t>(frame.size()));
        for (int fd : fds) ::close(fd);
        auto r = recv_message(sp.b.get(), 2000);
        REQUIRE_FALSE(r.ok());
        CHECK_THAT(r.message(), Catch::Contains("file descriptors"));
    }
    SECTION("send_message refuses more than kMaxFds") {
        SocketPair sp;
        Message m("many");
        for (int i = 0; i <= kMaxFds; ++i) m.attach_fd(Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
        CHECK_FALSE(send_message(sp.a.get(), m).ok());
    }
}

TEST_CASE("ipc: peer credentials are the connecting process", "[ipc]") {
    SocketPair sp;
    auto cred = peer_credentials(sp.b.get());
    REQUIRE(cred.ok());
    CHECK(cred->pid == ::getpid());
    CHECK(cred->uid == ::getuid());
    CHECK(cred->gid == ::getgid());
    CHECK_FALSE(peer_credentials(-1).ok());
}

TEST_CASE("ipc: connect_unix reports missing sockets and long paths", "[ipc]") {
    auto r = connect_unix("/nonexistent/tern-test.sock");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.message(), Catch::Contains("/nonexistent/tern-test.sock"));
    CHECK_FALSE(connect_unix(std::string(200, 'x')).ok());
}

TEST_CASE("ipc: Channels exchange messages both ways on an event loop", "[ipc]") {
    auto base = event::make_base();
    SocketPair sp;
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    Fd pipe_read(pipe_fds[0]);
    Fd pipe_write(pipe_fds[1]);

    std::vector<std::string> server_got, client_got;
    std::string big(1500000, 'z');  // larger than a socket buffer: partial writes
    std::unique_ptr<Channel> server, client;
    std::string server_close = "not closed";
    server = std::make_unique<Channel>(
        base.get(), std::move(sp.b),
        [&](Message& m) {
            server_got.push_back(m.type());
            if (m.type() == "hello") {
                REQUIRE(m.fds().size() == 1);
                Fd fd = m.take_fd(0);
                REQUIRE(::write(fd.get(), "via channel", 11) == 11);
                server->send(Message("welcome").add("big", big));
            }
        },
        [&](const std::string& reason) { server_close = reason; });
    client = std::make_unique<Channel>(
        base.get(), std::move(sp.a),
        [&](Message& m) {
            client_got.push_back(m.type());
            CHECK(m.get("big")->size() == big.size());
            // Destroying the channel from its own handler must be safe.
            client.reset();
        },
        [&](const std::string&) { FAIL("client closed unexpectedly"); });

    Message hello("hello");
    hello.attach_fd(std::move(pipe_write));
    client->send(hello);
    client->send(Message("second").add("n", "2"));
    hello.fds().clear();

    timeval limit{5, 0};
    event_base_loopexit(base.get(), &limit);
    while (client) {
        if (event_base_loop(base.get(), EVLOOP_ONCE) != 0) break;
    }
    REQUIRE_FALSE(client);
    CHECK(server_got == std::vector<std::string>{"hello", "second"});
    CHECK(client_got == std::vector<std::string>{"welcome"});
    char buf[32] = {};
    CHECK(::read(pipe_read.get(), buf, sizeof buf) == 11);
    CHECK(std::string(buf) == "via channel");

    // The client's socket closed with client.reset(): a clean EOF.
    for (int i = 0; i < 100 && server_close == "not closed"; ++i) event_base_loop(base.get(), EVLOOP_ONCE);
    CHECK(server_close == "");
    CHECK(server->closed());
}

TEST_CASE("ipc: Channel closes with a reason on garbage and mid-frame EOF", "[ipc]") {
    auto base = event::make_base();
    for (std::string input : {std::string("HELO example.org\r\n"), encode(Message("x")).substr(0, 7)}) {
        SocketPair sp;
        std::string reason = "not closed";
        int messages = 0;
        Channel ch(
            base.get(), std::move(sp.b), [&](Message&) { ++messages; },
            [&](const std::string& r) { reason = r; });
        REQUIRE(::write(sp.a.get(), input.data(), input.size()) == static_cast<ssize_t>(input.size()));
        sp.a.reset();
        for (int i = 0; i < 100 && reason == "not closed"; ++i) event_base_loop(base.get(), EVLOOP_ONCE);
        CHECK(messages == 0);
        CHECK_FALSE(reason.empty());
        CHECK(reason != "not closed");
        CHECK(ch.closed());
        ch.send(Message("ignored"));  // no effect, no crash after close
    }
}
