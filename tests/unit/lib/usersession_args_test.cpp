// Unit tests for lib/usersession/backend_args: the command line
// user-session builds for a backend and the backend parses (round trip,
// missing and hostile arguments).
#include <catch2/catch.hpp>

#include "lib/usersession/backend_args.hpp"

using tern::usersession::BackendArgs;

TEST_CASE("backend args: round trip", "[usersession]") {
    BackendArgs a{"bob", "/home/bob/Maildir", "192.0.2.7", "a001", true};
    auto args = a.to_args();
    REQUIRE(args.front() == "backend");
    auto b = BackendArgs::parse(args, true);
    REQUIRE(b);
    CHECK(b->user == "bob");
    CHECK(b->mail == "/home/bob/Maildir");
    CHECK(b->client_ip == "192.0.2.7");
    CHECK(b->tag == "a001");
    CHECK(b->tls);
    CHECK(b->peer().ss_family == AF_INET);

    BackendArgs pop{"carol", "/home/carol/Maildir", "2001:db8::1", "", false};
    auto p = BackendArgs::parse(pop.to_args(), false);
    REQUIRE(p);
    CHECK(p->tag.empty());
    CHECK_FALSE(p->tls);
    CHECK(p->peer().ss_family == AF_INET6);
}

TEST_CASE("backend args: values may contain '='", "[usersession]") {
    auto b = BackendArgs::parse({"backend", "user=x", "mail=/m/a=b", "rip=127.0.0.1", "tls=0"}, false);
    REQUIRE(b);
    CHECK(b->mail == "/m/a=b");
}

TEST_CASE("backend args: missing and hostile", "[usersession]") {
    CHECK_FALSE(BackendArgs::parse({}, false));
    CHECK_FALSE(BackendArgs::parse({"user=bob", "mail=/m"}, false));               // no "backend"
    CHECK_FALSE(BackendArgs::parse({"backend", "mail=/m"}, false));                // no user
    CHECK_FALSE(BackendArgs::parse({"backend", "user=bob"}, false));               // no mail
    CHECK_FALSE(BackendArgs::parse({"backend", "user=bob", "mail=/m"}, true));     // IMAP needs the tag
    CHECK_FALSE(BackendArgs::parse({"backend", "user=bob", "mail=/m", "uid=0"}, false));  // unknown key
    CHECK_FALSE(BackendArgs::parse({"backend", "user=bob", "mail=/m", "-o"}, false));     // no '='
    auto b = BackendArgs::parse({"backend", "user=bob", "mail=/m", "rip=not-an-ip"}, false);
    REQUIRE(b);
    CHECK(b->peer().ss_family == AF_UNIX);  // an unknown address is no loopback IP
}
