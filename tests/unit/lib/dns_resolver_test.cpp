// Unit tests for lib/dns's asynchronous resolver against the test DNS server
// on loopback: UDP answers, TCP fallback on TC, CNAME re-queries, SERVFAIL,
// NXDOMAIN, timeouts with a second server, and the AD bit.
#include <catch2/catch.hpp>

#include <optional>

#include "lib/dns/resolver.hpp"
#include "tests/unit/lib/dns_test_server.hpp"

using namespace tern;
using namespace tern::dns;

namespace {

struct Fixture {
    event::Base base = event::make_base();
    test::DnsTestServer server{base.get()};

    Resolver make(std::vector<std::string> servers = {}, int timeout_ms = 300) {
        ResolverSettings s;
        if (servers.empty()) servers.push_back(server.address());
        for (const auto& t : servers) s.servers.push_back(*parse_server(t));
        s.timeout = std::chrono::milliseconds(timeout_ms);
        s.attempts = 1;
        return Resolver(base.get(), s);
    }

    Answer run(Resolver& r, const std::string& name, Type type) {
        std::optional<Answer> out;
        r.lookup(name, type, [&](Answer a) {
            out = std::move(a);
            event_base_loopbreak(base.get());
        });
        REQUIRE_FALSE(out);  // never called from inside lookup()
        timeval limit{10, 0};
        event_base_loopexit(base.get(), &limit);  // a bound, in case of a bug
        event_base_dispatch(base.get());
        REQUIRE(out);
        return *out;
    }
};

}  // namespace

TEST_CASE("resolver: answers over UDP", "[dns][resolver]") {
    Fixture f;
    f.server.add("example.org. 300 IN MX 10 mx1.example.org.");
    f.server.add("example.org. 300 IN MX 10 mx2.example.org.");
    f.server.add("mx1.example.org. 300 IN A 127.0.0.2");
    Resolver r = f.make();
    Answer mx = f.run(r, "example.org", Type::MX);
    CHECK(mx.status == AnswerStatus::Ok);
    CHECK(mx.records.size() == 2);
    CHECK_FALSE(mx.authenticated);
    Answer a = f.run(r, "MX1.example.org.", Type::A);
    REQUIRE(a.status == AnswerStatus::Ok);
    CHECK(a.records.at(0).text == "127.0.0.2");
    CHECK(f.run(r, "mx1.example.org", Type::AAAA).status == AnswerStatus::NoData);
    CHECK(f.run(r, "nowhere.example.org", Type::MX).status == AnswerStatus::NxDomain);
    CHECK(f.server.tcp_queries == 0);
    CHECK(r.pending() == 0);
}

TEST_CASE("resolver: TC falls back to TCP", "[dns][resolver]") {
    Fixture f;
    f.server.add("big.example. 300 IN TXT \"hello\"");
    f.server.truncate.insert("big.example");
    Resolver r = f.make();
    Answer a = f.run(r, "big.example", Type::TXT);
    REQUIRE(a.status == AnswerStatus::Ok);
    CHECK(a.records.at(0).text == "hello");
    CHECK(f.server.tcp_queries == 1);
}

TEST_CASE("resolver: SERVFAIL and timeouts are temporary", "[dns][resolver]") {
    Fixture f;
    f.server.servfail.insert("broken.example");
    f.server.drop.insert("silent.example");
    Resolver r = f.make();
    Answer sf = f.run(r, "broken.example", Type::MX);
    CHECK(sf.status == AnswerStatus::TempFail);
    CHECK(sf.error == "SERVFAIL");
    Answer to = f.run(r, "silent.example", Type::MX);
    CHECK(to.status == AnswerStatus::TempFail);
    CHECK(to.error.find("timeout") != std::string::npos);
}

TEST_CASE("resolver: a silent server is skipped for the next one", "[dns][resolver]") {
    Fixture f;
    f.server.add("example.org. 300 IN A 127.0.0.3");
    // The first server never answers: the query moves on after the timeout.
    test::DnsTestServer other(f.base.get());
    other.drop.insert("example.org");
    Resolver r = f.make({other.address(), f.server.address()});
    Answer a = f.run(r, "example.org", Type::A);
    REQUIRE(a.status == AnswerStatus::Ok);
    CHECK(a.records.at(0).text == "127.0.0.3");
    CHECK(other.udp_queries == 1);
}

TEST_CASE("resolver: a lost datagram is sent again within the try", "[dns][resolver]") {
    Fixture f;
    f.server.add("example.org. 300 IN A 127.0.0.3");
    f.server.drop_once.insert("example.org");
    test::DnsTestServer other(f.base.get());  // would answer NXDOMAIN: must not be asked
    ResolverSettings s;
    s.servers = {*parse_server(f.server.address()), *parse_server(other.address())};
    s.timeout = std::chrono::milliseconds(5000);
    s.retransmit = std::chrono::milliseconds(50);
    s.attempts = 1;
    Resolver r(f.base.get(), s);
    Answer a = f.run(r, "example.org", Type::A);
    REQUIRE(a.status == AnswerStatus::Ok);
    CHECK(a.records.at(0).text == "127.0.0.3");
    CHECK(f.server.udp_queries == 2);
    CHECK(other.udp_queries == 0);
}

TEST_CASE("resolver: CNAME chains and the AD bit", "[dns][resolver]") {
    Fixture f;
    f.server.add("alias.example. 300 IN CNAME real.example.");
    f.server.add("real.example. 300 IN MX 5 mx.real.example.");
    f.server.partial_cname.insert("alias.example");  // the chain ends in another query
    f.server.authenticated = true;
    Resolver r = f.make();
    Answer a = f.run(r, "alias.example", Type::MX);
    REQUIRE(a.status == AnswerStatus::Ok);
    CHECK(a.canonical == "real.example");
    CHECK(a.records.at(0).text == "mx.real.example");
    CHECK(a.authenticated);
    CHECK(f.server.udp_queries == 2);

    f.server.add("loop1.example. 300 IN CNAME loop2.example.");
    f.server.add("loop2.example. 300 IN CNAME loop1.example.");
    f.server.partial_cname.insert("loop1.example");
    f.server.partial_cname.insert("loop2.example");
    Answer loop = f.run(r, "loop1.example", Type::A);
    CHECK(loop.status == AnswerStatus::TempFail);
}

TEST_CASE("resolver: bad names fail from the loop", "[dns][resolver]") {
    Fixture f;
    Resolver r = f.make();
    Answer a = f.run(r, std::string(300, 'x'), Type::A);
    CHECK(a.status == AnswerStatus::NxDomain);
}
