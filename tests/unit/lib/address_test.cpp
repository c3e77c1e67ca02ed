// Unit tests for lib/address: RFC 5321 path parsing, boundaries and hostile input.
#include <catch2/catch.hpp>

#include "lib/address/address.hpp"

using namespace tern::address;

namespace {
PathOptions sender_opts(bool utf8 = false) {
    PathOptions o;
    o.allow_null = true;
    o.allow_utf8 = utf8;
    return o;
}
PathOptions rcpt_opts(bool utf8 = false) {
    PathOptions o;
    o.allow_postmaster = true;
    o.allow_utf8 = utf8;
    o.sender = false;
    return o;
}
}  // namespace

TEST_CASE("address: plain paths", "[address]") {
    size_t used = 0;
    auto p = parse_path("<John.Doe@Example.ORG> SIZE=10", sender_opts(), &used);
    REQUIRE(p);
    CHECK(p->address == "John.Doe@example.org");
    CHECK(p->local == "John.Doe");
    CHECK(p->domain == "example.org");
    CHECK(used == 22);
    CHECK_FALSE(p->utf8);
}

TEST_CASE("address: null path only where allowed", "[address]") {
    auto p = parse_path("<>", sender_opts());
    REQUIRE(p);
    CHECK(p->null());
    auto r = parse_path("<>", rcpt_opts());
    REQUIRE_FALSE(r);
    CHECK(r.message().rfind("501 5.1.3", 0) == 0);
}

TEST_CASE("address: source route is ignored", "[address]") {
    auto p = parse_path("<@relay.example,@b.example:user@example.org>", rcpt_opts());
    REQUIRE(p);
    CHECK(p->address == "user@example.org");
    CHECK_FALSE(parse_path("<@relay.example:>", rcpt_opts()));
    CHECK_FALSE(parse_path("<@:user@example.org>", rcpt_opts()));
}

TEST_CASE("address: quoted local parts", "[address]") {
    auto p = parse_path("<\"john smith\"@example.org>", rcpt_opts());
    REQUIRE(p);
    CHECK(p->local == "john smith");
    CHECK(p->address == "\"john smith\"@example.org");
    auto q = parse_path("<\"john\"@example.org>", rcpt_opts());
    REQUIRE(q);
    CHECK(q->address == "john@example.org");  // canonical form needs no quotes
    auto e = parse_path("<\"a\\\"b\"@example.org>", rcpt_opts());
    REQUIRE(e);
    CHECK(e->local == "a\"b");
    CHECK(e->address == "\"a\\\"b\"@example.org");
    CHECK_FALSE(parse_path("<\"unterminated@example.org>", rcpt_opts()));
    CHECK_FALSE(parse_path("<\"a\x01\"@example.org>", rcpt_opts()));
}

TEST_CASE("address: UTF-8 only with SMTPUTF8", "[address]") {
    std::string in = "<j\xc3\xb6rg@b\xc3\xbc" "cher.example>";
    CHECK_FALSE(parse_path(in, rcpt_opts(false)));
    auto p = parse_path(in, rcpt_opts(true));
    REQUIRE(p);
    CHECK(p->utf8);
    CHECK(p->local == "j\xc3\xb6rg");
    // Overlong and truncated sequences are refused even with SMTPUTF8.
    CHECK_FALSE(parse_path("<a\xc0\xafz@example.org>", rcpt_opts(true)));
    CHECK_FALSE(parse_path("<a\xe2\x82@example.org>", rcpt_opts(true)));
    CHECK_FALSE(parse_path("<a\xed\xa0\x80@example.org>", rcpt_opts(true)));  // surrogate
}

TEST_CASE("address: domain literals", "[address]") {
    auto p = parse_path("<root@[192.0.2.1]>", rcpt_opts());
    REQUIRE(p);
    CHECK(p->domain == "[192.0.2.1]");
    auto q = parse_path("<root@[IPv6:2001:DB8::1]>", rcpt_opts());
    REQUIRE(q);
    CHECK(q->domain == "[ipv6:2001:db8::1]");
    CHECK_FALSE(parse_path("<root@[300.1.1.1]>", rcpt_opts()));
    CHECK_FALSE(parse_path("<root@[x-tag:foo]>", rcpt_opts()));
    CHECK_FALSE(parse_path("<root@[192.0.2.1>", rcpt_opts()));
}

TEST_CASE("address: postmaster without domain", "[address]") {
    auto p = parse_path("<PostMaster>", rcpt_opts());
    REQUIRE(p);
    CHECK(p->address == "postmaster");
    CHECK(p->domain.empty());
    CHECK_FALSE(parse_path("<postmaster>", sender_opts()));
    CHECK_FALSE(parse_path("<alice>", rcpt_opts()));
}

TEST_CASE("address: length boundaries", "[address]") {
    std::string local64(64, 'a'), local65(65, 'a');
    CHECK(parse_path("<" + local64 + "@example.org>", rcpt_opts()));
    CHECK_FALSE(parse_path("<" + local65 + "@example.org>", rcpt_opts()));
    std::string label63(63, 'b'), label64(64, 'b');
    CHECK(parse_path("<a@" + label63 + ".org>", rcpt_opts()));
    CHECK_FALSE(parse_path("<a@" + label64 + ".org>", rcpt_opts()));
    std::string long_domain;
    for (int i = 0; i < 5; ++i) long_domain += label63 + ".";
    long_domain += "org";
    CHECK_FALSE(parse_path("<a@" + long_domain + ">", rcpt_opts()));
}

TEST_CASE("address: hostile input", "[address]") {
    const char* bad[] = {"", "<", ">", "<@>", "<a@>", "<@example.org>", "<a..b@example.org>",
                         "<.a@example.org>", "<a.@example.org>", "<a@-example.org>", "<a@example-.org>",
                         "<a@exa_mple.org>", "<a@example..org>", "<a@example.org", "<a b@example.org>",
                         "<a@example.org>>x", "<a@b@c>", "a@example.org>", "<a\r\n@example.org>"};
    for (const char* s : bad) {
        INFO(s);
        size_t used = 0;
        auto r = parse_path(s, rcpt_opts(), &used);
        if (r) CHECK(used <= std::string_view(s).size());
        // "<a@example.org>>x" parses its path and leaves ">x" as garbage for the caller.
        if (std::string_view(s) != "<a@example.org>>x") CHECK_FALSE(r);
    }
    std::string nul("<a\0b@example.org>", 18);
    CHECK_FALSE(parse_path(nul, rcpt_opts()));
}

TEST_CASE("address: bare addresses", "[address]") {
    auto p = parse_path("user@Example.org", rcpt_opts());
    REQUIRE(p);
    CHECK(p->address == "user@example.org");
    PathOptions strict = rcpt_opts();
    strict.allow_bare = false;
    CHECK_FALSE(parse_path("user@example.org", strict));
    auto whole = parse_address("x@y.example");
    REQUIRE(whole);
    CHECK_FALSE(parse_address("x@y.example extra"));
}

TEST_CASE("address: recipient delimiter", "[address]") {
    auto p = split_extension("user+tag+more", "+");
    CHECK(p.has_extension);
    CHECK(p.base == "user");
    CHECK(p.extension == "tag+more");
    auto q = split_extension("user-tag", "+-");
    CHECK(q.base == "user");
    CHECK(q.extension == "tag");
    auto r = split_extension("+user", "+");
    CHECK_FALSE(r.has_extension);
    CHECK(r.base == "+user");
    CHECK_FALSE(split_extension("user", "").has_extension);
    CHECK_FALSE(split_extension("user", "+").has_extension);
}

TEST_CASE("address: quote_local and valid_domain", "[address]") {
    CHECK(quote_local("a.b") == "a.b");
    CHECK(quote_local("a b") == "\"a b\"");
    CHECK(quote_local("") == "\"\"");
    CHECK(valid_domain("example.org", false));
    CHECK_FALSE(valid_domain("b\xc3\xbc" "cher.example", false));
    CHECK(valid_domain("b\xc3\xbc" "cher.example", true));
    CHECK(lower_ascii("AbC\xc3\x84") == "abc\xc3\x84");
}
