// Unit tests for lib/tables/passwords: the users file joined with the
// password file, the upgrade case (hash still in the users file), entries
// of one file without the other, and hostile lines.
#include <catch2/catch.hpp>

#include "lib/tables/passwords.hpp"

using namespace tern::tables;

namespace {

const VirtualUser* find(const PasswordMerge& m, const std::string& address) {
    for (const auto& u : m.users)
        if (u.address == address) return &u;
    return nullptr;
}

}  // namespace

TEST_CASE("passwords: hashes come from the password file", "[tables][passwords]") {
    auto m = merge_passwords("alice@example.org::::/home/a:quota=1000\nBob@Example.org:\n", "users",
                             "# comment\nalice@example.org:{YESCRYPT}$y$abc\nbob@example.org:{SHA512-CRYPT}$6$x\n",
                             "passwd");
    CHECK(m.diagnostics.empty());
    CHECK(m.legacy == 0);
    REQUIRE(m.users.size() == 2);
    const auto* a = find(m, "alice@example.org");
    REQUIRE(a);
    CHECK(a->password == "{YESCRYPT}$y$abc");
    CHECK(a->home == "/home/a");
    CHECK(a->quota == 1000);
    const auto* b = find(m, "bob@example.org");
    REQUIRE(b);
    CHECK(b->password == "{SHA512-CRYPT}$6$x");
}

TEST_CASE("passwords: an older users file keeps its hashes until converted", "[tables][passwords]") {
    // No password file at all: every hash is a legacy one.
    auto m = merge_passwords("alice@example.org:{SHA512-CRYPT}$6$old\ncarol@example.org:\n", "users", "", "passwd");
    CHECK(m.legacy == 1);
    CHECK(find(m, "alice@example.org")->password == "{SHA512-CRYPT}$6$old");
    CHECK(find(m, "carol@example.org")->password.empty());
    // The password file wins over a hash left in the users file.
    m = merge_passwords("alice@example.org:{SHA512-CRYPT}$6$old\n", "users", "alice@example.org:{YESCRYPT}$y$new\n",
                        "passwd");
    CHECK(m.legacy == 0);
    CHECK(find(m, "alice@example.org")->password == "{YESCRYPT}$y$new");
}

TEST_CASE("passwords: a hash without a user grants nothing; bad lines are reported", "[tables][passwords]") {
    auto m = merge_passwords("alice@example.org:\n", "users",
                             "mallory@example.org:{PLAIN}x\nnot-an-address:{PLAIN}y\njustaname\n", "passwd");
    CHECK(m.users.size() == 1);
    CHECK(find(m, "mallory@example.org") == nullptr);
    CHECK(find(m, "alice@example.org")->password.empty());
    REQUIRE(m.diagnostics.size() == 3);
    bool named = false;
    for (const auto& d : m.diagnostics)
        if (d.find("passwd:1: 'mallory@example.org' is not in users") != std::string::npos) named = true;
    CHECK(named);
    // Hostile bytes and an empty file do not break the join.
    m = merge_passwords(std::string("\0\n:\n::::\n", 9), "users", std::string(5000, ':'), "passwd");
    CHECK(m.users.empty());
}
