// Tests for lib/auth/sasl: base64, PLAIN decoding (RFC 4616) and the
// PLAIN/LOGIN exchange with and without an initial response.
#include <catch2/catch.hpp>

#include <string>

#include "lib/auth/sasl.hpp"

using namespace tern::auth;
using namespace std::string_literals;

TEST_CASE("base64 round trip and hostile input", "[auth][sasl]") {
    for (std::string s : {""s, "a"s, "ab"s, "abc"s, "abcd"s, "\0\xff\x10"s, "user\0name\0pw"s}) {
        auto d = base64_decode(base64_encode(s));
        REQUIRE(d);
        CHECK(*d == s);
    }
    CHECK(base64_encode("\0demo\0demo"s) == "AGRlbW8AZGVtbw==");
    CHECK_FALSE(base64_decode("abc"));       // length
    CHECK_FALSE(base64_decode("ab=c"));      // padding in the middle
    CHECK_FALSE(base64_decode("a==="));      // too much padding
    CHECK_FALSE(base64_decode("ab==abcd"));  // padding before the end
    CHECK_FALSE(base64_decode("ab c"));      // white space
    CHECK_FALSE(base64_decode("ab\x80="));
}

TEST_CASE("PLAIN message decoding", "[auth][sasl]") {
    auto c = decode_plain("\0alice@example.org\0secret"s);
    REQUIRE(c);
    CHECK(c->authzid.empty());
    CHECK(c->authcid == "alice@example.org");
    CHECK(c->password == "secret");
    auto z = decode_plain("admin\0alice\0pw"s);
    REQUIRE(z);
    CHECK(z->authzid == "admin");
    CHECK_FALSE(decode_plain("alice secret"));
    CHECK_FALSE(decode_plain("\0alice"s));
    CHECK_FALSE(decode_plain("\0\0pw"s));           // empty authcid
    CHECK_FALSE(decode_plain("\0alice\0"s));        // empty password
    CHECK_FALSE(decode_plain("\0a\0b\0c"s));        // NUL in the password
    CHECK_FALSE(decode_plain("\0"s + std::string(kMaxField + 1, 'u') + "\0pw"s));
    CHECK(decode_plain("\0"s + std::string(kMaxField, 'u') + "\0pw"s));
}

TEST_CASE("PLAIN exchange with and without an initial response", "[auth][sasl]") {
    SaslExchange s;
    auto step = s.start("plain", "AGRlbW8AZGVtbw==");
    REQUIRE(step.state == SaslState::done);
    CHECK(s.mechanism() == "PLAIN");
    CHECK(s.credentials().authcid == "demo");
    CHECK(s.credentials().password == "demo");

    SaslExchange t;
    step = t.start("PLAIN", std::nullopt);
    REQUIRE(step.state == SaslState::challenge);
    CHECK(step.challenge.empty());
    step = t.next("AGRlbW8AZGVtbw==");
    REQUIRE(step.state == SaslState::done);
    CHECK(t.credentials().authcid == "demo");
    // After the end nothing more is accepted.
    CHECK(t.next("AGRlbW8AZGVtbw==").state == SaslState::failed);

    SaslExchange u;
    CHECK(u.start("PLAIN", "=").state == SaslState::failed);
    CHECK(u.start("PLAIN", "not base64!").state == SaslState::failed);
    CHECK(u.start("CRAM-MD5", std::nullopt).state == SaslState::failed);
    CHECK(u.credentials().authcid.empty());
}

TEST_CASE("LOGIN exchange, cancel and bad input", "[auth][sasl]") {
    SaslExchange s;
    auto step = s.start("LOGIN", std::nullopt);
    REQUIRE(step.state == SaslState::challenge);
    CHECK(*base64_decode(step.challenge) == "Username:");
    step = s.next(base64_encode("alice@example.org"));
    REQUIRE(step.state == SaslState::challenge);
    CHECK(*base64_decode(step.challenge) == "Password:");
    step = s.next(base64_encode("pass word"));
    REQUIRE(step.state == SaslState::done);
    CHECK(s.credentials().authcid == "alice@example.org");
    CHECK(s.credentials().password == "pass word");

    SaslExchange ir;
    step = ir.start("login", base64_encode("bob"));
    REQUIRE(step.state == SaslState::challenge);
    CHECK(*base64_decode(step.challenge) == "Password:");

    SaslExchange c;
    c.start("LOGIN", std::nullopt);
    CHECK(c.next("*").state == SaslState::cancelled);

    SaslExchange n;
    n.start("LOGIN", std::nullopt);
    CHECK(n.next(base64_encode("a\0b"s)).state == SaslState::failed);
    SaslExchange e;
    e.start("LOGIN", std::nullopt);
    CHECK(e.next("").state == SaslState::failed);  // empty user name
    SaslExchange l;
    l.start("LOGIN", std::nullopt);
    CHECK(l.next(base64_encode(std::string(kMaxField + 1, 'x'))).state == SaslState::failed);
    CHECK(SaslExchange::supported("login"));
    CHECK_FALSE(SaslExchange::supported("XOAUTH2"));
}
