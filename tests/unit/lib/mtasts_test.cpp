// Unit tests for lib/mtasts: TXT records, policy files, MX pattern matching.
#include <catch2/catch.hpp>

#include "lib/mtasts/policy.hpp"

using namespace tern::mtasts;

TEST_CASE("mta-sts: TXT records", "[mtasts]") {
    CHECK(*parse_txt("v=STSv1; id=20160831085700Z;") == "20160831085700Z");
    CHECK(*parse_txt("v=STSv1;id=abc") == "abc");
    CHECK(*parse_txt("v=STSv1; ext=1; id=x") == "x");
    CHECK_FALSE(parse_txt("id=abc; v=STSv1"));
    CHECK_FALSE(parse_txt("v=STSv2; id=abc"));
    CHECK_FALSE(parse_txt("v=STSv1"));
    CHECK_FALSE(parse_txt("v=STSv1; id=bad-char"));
    CHECK_FALSE(parse_txt("v=STSv1; id=" + std::string(33, 'a')));
    CHECK_FALSE(parse_txt(""));
    CHECK_FALSE(parse_txt("v=STSv1; junk"));
}

TEST_CASE("mta-sts: policy files", "[mtasts]") {
    auto p = parse("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.net\r\nmax_age: 86400\r\nother: x\r\n");
    REQUIRE(p);
    CHECK(p->mode == Mode::Enforce);
    CHECK(p->max_age == 86400);
    CHECK(p->matches("mail.example.com"));
    CHECK(p->matches("MAIL.example.com."));
    CHECK(p->matches("mx1.example.net"));
    CHECK_FALSE(p->matches("a.b.example.net"));  // one label only
    CHECK_FALSE(p->matches("example.net"));
    CHECK_FALSE(p->matches("evil.example.com"));
    CHECK(parse("version: STSv1\nmode: testing\nmx: a\nmax_age: 99999999999\n").ok() == false);
    CHECK(parse("version: STSv1\nmode: testing\nmx: a\nmax_age: 999999999\n")->max_age == 31557600);
    CHECK(parse("version: STSv1\nmode: none\nmax_age: 1\n")->mode == Mode::None);
    CHECK_FALSE(parse("version: STSv1\nmode: enforce\nmax_age: 1\n"));  // no mx
    CHECK_FALSE(parse("mode: enforce\nmx: a\nmax_age: 1\n"));
    CHECK_FALSE(parse("version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n"));
    CHECK_FALSE(parse("version: STSv1\nmode: enforce\nmx: a\nmax_age: -1\n"));
    CHECK_FALSE(parse("version: STSv1\nno colon here\n"));
    CHECK_FALSE(parse(""));
}
