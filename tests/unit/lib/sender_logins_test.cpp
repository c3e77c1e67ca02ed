// Tests for lib/tables/sender_logins: the map file parser (valid, boundary,
// hostile lines) and the ownership rule without alias tables.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "lib/tables/sender_logins.hpp"

using namespace tern::tables;

TEST_CASE("sender login map parsing", "[tables][sender_logins]") {
    auto p = parse_sender_logins(
        "# comment\n"
        "Info@Example.ORG   alice@example.org, BOB@example.org\n"
        "@example.net\tcarol@example.org # trailing comment\n"
        "\n"
        "info@example.org dave\n"
        "nologin@example.org\n"
        "not-an-address alice\n"
        "a@b@c alice\n"
        "@ alice\n",
        "map");
    REQUIRE(p.owners.size() == 2);
    CHECK(p.owners["info@example.org"] == std::vector<std::string>{"alice@example.org", "bob@example.org", "dave"});
    CHECK(p.owners["@example.net"] == std::vector<std::string>{"carol@example.org"});
    REQUIRE(p.diagnostics.size() == 4);
    CHECK(p.diagnostics[0] == "map:6: no login for 'nologin@example.org'");
    CHECK(p.diagnostics[1].find("map:7:") == 0);
    CHECK(parse_sender_logins("", "m").owners.empty());
    CHECK(parse_sender_logins(std::string("\0\0\n,,,\n", 7), "m").owners.empty());
}

TEST_CASE("sender ownership: own address, extension, map, null sender", "[tables][sender_logins]") {
    char path[] = "/tmp/tern-sender-logins-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    {
        std::ofstream f(path);
        f << "info@example.org alice@example.org\n@example.net alice@example.org\n";
    }
    auto map = SenderLogins::load(path);
    REQUIRE(map);
    auto owned = [&](const char* sender, const char* login) {
        return sender_owned_by(sender, login, *map, nullptr, "+");
    };
    CHECK(owned("alice@example.org", "alice@example.org"));
    CHECK(owned("Alice@Example.org", "alice@example.org"));
    CHECK(owned("alice+lists@example.org", "alice@example.org"));
    CHECK(owned("", "alice@example.org"));
    CHECK(owned("info@example.org", "alice@example.org"));
    CHECK(owned("anyone@example.net", "alice@example.org"));
    CHECK(owned("info+x@example.org", "alice@example.org"));
    CHECK_FALSE(owned("info@example.org", "bob@example.org"));
    CHECK_FALSE(owned("bob@example.org", "alice@example.org"));
    CHECK_FALSE(owned("alice@example.org.evil", "alice@example.org"));
    CHECK_FALSE(owned("alice@example.org", ""));
    // Without tables a system login owns nothing but what the map says.
    CHECK_FALSE(owned("bob@localhost", "bob"));
    auto empty = SenderLogins::load("");
    REQUIRE(empty);
    CHECK(empty->listed_owners("info@example.org").empty());
    CHECK_FALSE(SenderLogins::load("/nonexistent/map"));
    std::remove(path);
}
