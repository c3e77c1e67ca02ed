// Unit tests for lib/pop3/command: keywords, arguments, numbers (valid,
// boundary and hostile input).
#include <catch2/catch.hpp>

#include "lib/pop3/command.hpp"

using namespace tern::pop3;

TEST_CASE("pop3 command: keywords in any case, arguments split", "[pop3]") {
    auto c = parse_command("retr 1");
    REQUIRE(c);
    CHECK(c->verb == Verb::Retr);
    CHECK(c->keyword == "RETR");
    REQUIRE(c->args.size() == 1);
    CHECK(c->args[0] == "1");
    CHECK_FALSE(check_arguments(*c));

    c = parse_command("TOP 3 10");
    REQUIRE(c);
    CHECK(c->verb == Verb::Top);
    REQUIRE(c->args.size() == 2);
    CHECK(c->args[1] == "10");

    c = parse_command("Capa");
    REQUIRE(c);
    CHECK(c->verb == Verb::Capa);
    CHECK(c->args.empty());

    // Several or trailing spaces count as one separator.
    c = parse_command("LIST  2 ");
    REQUIRE(c);
    REQUIRE(c->args.size() == 1);
    CHECK(c->args[0] == "2");
}

TEST_CASE("pop3 command: PASS keeps spaces, AUTH takes a long initial response", "[pop3]") {
    auto c = parse_command("PASS  two words ");
    REQUIRE(c);
    CHECK(c->verb == Verb::Pass);
    CHECK(c->rest == " two words ");
    CHECK_FALSE(check_arguments(*c));
    c = parse_command("PASS");
    REQUIRE(c);
    CHECK(check_arguments(*c) == "syntax: PASS password");

    std::string ir(400, 'A');
    c = parse_command("AUTH PLAIN " + ir);
    REQUIRE(c);
    REQUIRE(c->args.size() == 2);
    CHECK(c->args[1].size() == 400);
    CHECK_FALSE(check_arguments(*c));
}

TEST_CASE("pop3 command: unknown and malformed keywords", "[pop3]") {
    auto c = parse_command("XYZZ");
    REQUIRE(c);
    CHECK(c->verb == Verb::Unknown);
    CHECK(check_arguments(*c) == "unknown command");

    CHECK_FALSE(parse_command(""));
    CHECK_FALSE(parse_command("   "));
    CHECK_FALSE(parse_command(" STAT"));
    CHECK_FALSE(parse_command("RETRIEVE 1"));  // > 4 letters
    CHECK_FALSE(parse_command("RE"));
    CHECK_FALSE(parse_command("R3TR 1"));
    CHECK(parse_command("STAT\t").message() == "command contains control characters");
    CHECK_FALSE(parse_command(std::string("USER a\0b", 8)));
    CHECK_FALSE(parse_command("USER \x7f"));
}

TEST_CASE("pop3 command: argument limits", "[pop3]") {
    CHECK(parse_command("USER " + std::string(253, 'u')));
    CHECK(parse_command("USER " + std::string(254, 'u')).message() == "argument too long (at most 253 characters)");
    CHECK(parse_command("TOP 1 2 3 4"));
    CHECK(parse_command("TOP 1 2 3 4 5").message() == "too many arguments");
}

TEST_CASE("pop3 command: argument counts per verb", "[pop3]") {
    auto check = [](std::string_view line) {
        auto c = parse_command(line);
        REQUIRE(c);
        return check_arguments(*c);
    };
    CHECK_FALSE(check("STAT"));
    CHECK(check("STAT 1") == "syntax: STAT");
    CHECK_FALSE(check("LIST"));
    CHECK_FALSE(check("LIST 1"));
    CHECK(check("LIST 1 2") == "syntax: LIST [msg]");
    CHECK(check("RETR") == "syntax: RETR msg");
    CHECK(check("DELE 1 2") == "syntax: DELE msg");
    CHECK(check("TOP 1") == "syntax: TOP msg lines");
    CHECK(check("USER") == "syntax: USER name");
    CHECK(check("USER a b") == "syntax: USER name");
    CHECK(check("UIDL 1 2") == "syntax: UIDL [msg]");
    CHECK(check("STLS now") == "syntax: STLS");
    CHECK(check("QUIT x") == "syntax: QUIT");
    CHECK_FALSE(check("AUTH"));
    CHECK_FALSE(check("AUTH PLAIN"));
    CHECK(check("AUTH PLAIN a b") == "syntax: AUTH mechanism [initial-response]");
}

TEST_CASE("pop3 command: message numbers and line counts", "[pop3]") {
    CHECK(message_number("1") == 1u);
    CHECK(message_number("007") == 7u);
    CHECK(message_number("2147483647") == 2147483647u);
    CHECK_FALSE(message_number("2147483648"));
    CHECK_FALSE(message_number("99999999999"));
    CHECK_FALSE(message_number("0"));
    CHECK_FALSE(message_number(""));
    CHECK_FALSE(message_number("-1"));
    CHECK_FALSE(message_number("+1"));
    CHECK_FALSE(message_number("1a"));
    CHECK_FALSE(message_number(" 1"));
    CHECK(line_count("0") == 0u);
    CHECK(line_count("10") == 10u);
    CHECK_FALSE(line_count("-0"));
    CHECK_FALSE(line_count("x"));
}

TEST_CASE("pop3 command: verb names", "[pop3]") {
    CHECK(verb_name(Verb::Stls) == "STLS");
    CHECK(verb_name(Verb::Top) == "TOP");
    CHECK(verb_name(Verb::Unknown) == "UNKNOWN");
}
