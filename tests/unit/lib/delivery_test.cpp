// Tests for lib/delivery: the qmgr ↔ agent request/response encoding,
// including the body fd and malformed messages from a buggy peer.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/delivery/request.hpp"

using namespace tern;
using namespace tern::delivery;

namespace {

delivery::Request sample_request() {
    Request r;
    r.queue_id = "4XQ1ABCDEF";
    r.sender = "alice@example.org";
    r.arrival = 1700000000;
    r.size = 12345;
    r.nexthop = "local";
    r.recipients.push_back({0, "bob@example.org", "rfc822;bob@example.org"});
    r.recipients.push_back({3, "\"odd user\"@example.org", ""});
    r.recipients.push_back({7, "carol@example.org", std::string("utf-8;x\0y 1 2", 13)});
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    REQUIRE(::write(fds[1], "body", 4) == 4);
    ::close(fds[1]);
    r.body.reset(fds[0]);
    return r;
}

// m through the real wire format and a socket, as qmgr sends it.
Result<ipc::Message> through_socket(const ipc::Message& m) {
    int sp[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
    Fd a(sp[0]), b(sp[1]);
    REQUIRE(ipc::send_message(a.get(), m).ok());
    return ipc::recv_message(b.get(), 2000);
}

}  // namespace

TEST_CASE("delivery: request round trip keeps recipients and the body fd", "[delivery]") {
    Request in = sample_request();
    ipc::Message m = encode_request(in);
    CHECK(m.type() == "deliver");
    CHECK(in.body.valid());  // encode dups, the caller keeps its fd

    auto received = through_socket(m);
    REQUIRE(received.ok());
    auto out = decode_request(*received);
    REQUIRE(out.ok());
    CHECK(out->queue_id == in.queue_id);
    CHECK(out->sender == in.sender);
    CHECK(out->arrival == in.arrival);
    CHECK(out->size == in.size);
    CHECK(out->nexthop == "local");
    REQUIRE(out->recipients.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
        CHECK(out->recipients[i].index == in.recipients[i].index);
        CHECK(out->recipients[i].address == in.recipients[i].address);
        CHECK(out->recipients[i].orcpt == in.recipients[i].orcpt);
    }
    REQUIRE(out->body.valid());
    char buf[8] = {};
    CHECK(::read(out->body.get(), buf, sizeof buf) == 4);
    CHECK(std::string(buf) == "body");

    Request null_sender = sample_request();
    null_sender.sender = "";
    ipc::Message m2 = encode_request(null_sender);
    auto out2 = decode_request(m2);
    REQUIRE(out2.ok());
    CHECK(out2->sender.empty());
    CHECK_FALSE(out2->maybe_delivered);

    Request retry = sample_request();
    retry.maybe_delivered = true;
    ipc::Message m3 = encode_request(retry);
    auto out3 = decode_request(m3);
    REQUIRE(out3.ok());
    CHECK(out3->maybe_delivered);
}

TEST_CASE("delivery: a small body travels inline, with no fd", "[delivery]") {
    Request in = sample_request();
    in.body.reset();
    in.inline_body = true;
    using namespace std::string_literals;
    in.body_text = "Subject: s\n\nbinary \0 byte and\r\nCRLF"s;
    CHECK(in.body_text.find('\0') != std::string::npos);
    ipc::Message m = encode_request(in);
    CHECK(m.fds().empty());
    auto received = through_socket(m);
    REQUIRE(received.ok());
    auto out = decode_request(*received);
    REQUIRE(out.ok());
    CHECK(out->inline_body);
    CHECK(out->body_text == in.body_text);
    CHECK_FALSE(out->body.valid());
    REQUIRE(out->recipients.size() == 3);

    // Both an inline body and an fd: refused, not guessed.
    ipc::Message both = encode_request(in);
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    ::close(fds[1]);
    both.attach_fd(Fd(fds[0]));
    CHECK_FALSE(decode_request(both).ok());
}

TEST_CASE("delivery: remote delivery parameters travel with the request", "[delivery]") {
    Request in = sample_request();
    in.body_type = "8BITMIME";
    in.smtputf8 = true;
    in.dsn_ret = "HDRS";
    in.dsn_envid = "env 1";
    in.recipients[1].notify = 3;
    ipc::Message m = encode_request(in);
    auto out = decode_request(m);
    REQUIRE(out.ok());
    CHECK(out->body_type == "8BITMIME");
    CHECK(out->smtputf8);
    CHECK(out->dsn_ret == "HDRS");
    CHECK(out->dsn_envid == "env 1");
    CHECK(out->recipients[0].notify == 0);
    CHECK(out->recipients[1].notify == 3);

    Request plain = sample_request();
    ipc::Message m2 = encode_request(plain);
    auto out2 = decode_request(m2);
    REQUIRE(out2.ok());
    CHECK(out2->body_type.empty());
    CHECK_FALSE(out2->smtputf8);

    for (const char* bad : {"x 1", "99 1", "0 0", "0 16", "0"}) {
        ipc::Message mb = encode_request(sample_request());
        mb.add("notify", bad);
        CHECK_FALSE(decode_request(mb).ok());
    }
}

TEST_CASE("delivery: malformed requests are refused", "[delivery]") {
    // auto&&: Messages own fds and cannot be copied; add() returns a reference.
    auto expect_error = [](auto&& m, const std::string& what) {
        auto r = decode_request(m);
        REQUIRE_FALSE(r.ok());
        CHECK_THAT(r.message(), Catch::Contains(what));
    };
    auto base = [] {
        ipc::Message m("deliver");
        m.add("queue_id", "Q1").add("sender", "").add("arrival", "1").add("size", "10").add("nexthop", "local");
        return m;
    };
    auto with_fd = [](auto&& m) {
        ipc::Message out = std::move(m);
        out.attach_fd(Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
        return out;
    };
    expect_error(ipc::Message("result"), "deliver");
    expect_error(with_fd(base()), "no recipients");
    expect_error(base().add("rcpt", "0 5 a@b.c"), "body fd");
    expect_error(with_fd(base().add("rcpt", "0 99 a@b.c")), "malformed rcpt");
    expect_error(with_fd(base().add("rcpt", "x 1 a")), "malformed rcpt");
    expect_error(with_fd(base().add("rcpt", "0")), "malformed rcpt");
    expect_error(with_fd(base().add("rcpt", "-1 1 a")), "malformed rcpt");
    expect_error(with_fd(base().add("rcpt", "0 0 ")), "empty recipient");
    expect_error(with_fd(base().add("rcpt", "1 1 a").add("rcpt", "1 1 b")), "duplicate");
    ipc::Message no_size("deliver");
    no_size.add("queue_id", "Q1").add("sender", "").add("arrival", "1").add("nexthop", "x");
    expect_error(with_fd(no_size.add("rcpt", "0 1 a")), "size");
    ipc::Message bad_arrival("deliver");
    bad_arrival.add("queue_id", "Q1").add("sender", "").add("arrival", "soon").add("size", "1").add("nexthop", "x");
    expect_error(with_fd(bad_arrival.add("rcpt", "0 1 a")), "arrival");
    ipc::Message empty_id("deliver");
    empty_id.add("queue_id", "");
    expect_error(empty_id, "queue_id");
    // Two fds where one is expected.
    expect_error(with_fd(with_fd(base().add("rcpt", "0 1 a"))), "one body fd");
    // The good one decodes.
    ipc::Message good = with_fd(base().add("rcpt", "0 1 a"));
    CHECK(decode_request(good).ok());
}

TEST_CASE("delivery: response round trip and hostile statuses", "[delivery]") {
    Response in;
    in.queue_id = "4XQ1ABCDEF";
    in.results.push_back({0, Outcome::Delivered, "2.0.0", "delivered to maildir"});
    in.results.push_back({3, Outcome::Deferred, "4.2.2", "mailbox full"});
    in.results.push_back({7, Outcome::Bounced, "5.1.1", ""});
    auto out = decode_response(encode_response(in));
    REQUIRE(out.ok());
    CHECK(out->queue_id == in.queue_id);
    REQUIRE(out->results.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
        CHECK(out->results[i].index == in.results[i].index);
        CHECK(out->results[i].outcome == in.results[i].outcome);
        CHECK(out->results[i].dsn == in.results[i].dsn);
        CHECK(out->results[i].text == in.results[i].text);
    }

    auto status = [](std::string value) {
        ipc::Message m("result");
        m.add("queue_id", "Q1").add("status", value);
        return decode_response(m);
    };
    CHECK(status("0 d 2.0.0 ok").ok());
    CHECK(status("12 s 4.4.1 connection timed out: 192.0.2.1").ok());
    for (const char* bad : {"", "0", "0 d", "0 d 2.0.0", "0 x 2.0.0 t", "0 dd 2.0.0 t", "a d 2.0.0 t",
                            "0 d 3.0.0 t", "0 d 2.0 t", "0 d 2..0 t", "0 d 2.0.1234 t", "0 d x.y.z t"})
        CHECK_FALSE(status(bad).ok());
    ipc::Message dup("result");
    dup.add("queue_id", "Q1").add("status", "1 d 2.0.0 a").add("status", "1 b 5.0.0 b");
    CHECK_FALSE(decode_response(dup).ok());
    CHECK_FALSE(decode_response(ipc::Message("deliver")).ok());
    CHECK_FALSE(decode_response(ipc::Message("result")).ok());  // no queue_id
}
