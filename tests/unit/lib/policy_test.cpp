// Unit tests for lib/policy: shared rate limits, blocks, connection counts.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "lib/policy/limits.hpp"

using namespace tern::policy;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/tern-policy-test-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

pid_t dead_pid() {
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, nullptr, 0);
    return p;
}

Limits limits() {
    Limits l;
    l.client_message_rate = 3;
    l.sender_message_rate = 2;
    l.unit_seconds = 60;
    l.block_seconds = 3600;
    return l;
}

}  // namespace

TEST_CASE("policy: message rate blocks once, then expires", "[policy]") {
    TempDir dir;
    auto store = LimitsStore::open(dir.path);
    REQUIRE(store);
    auto& s = **store;
    Limits l = limits();
    int64_t now = 1000000;
    for (int i = 0; i < 3; ++i) {
        auto v = s.count_message(Kind::Client, "192.0.2.1", l.client_message_rate, l, now + i);
        REQUIRE(v);
        CHECK(v->allowed);
    }
    auto over = s.count_message(Kind::Client, "192.0.2.1", l.client_message_rate, l, now + 3);
    REQUIRE(over);
    CHECK_FALSE(over->allowed);
    REQUIRE(over->new_block);
    CHECK(over->new_block->reason == "message rate 4/60s exceeds limit 3");
    CHECK(over->new_block->until == now + 3 + 3600);
    // Blocked already: still refused, but no second block (logged once).
    auto again = s.count_message(Kind::Client, "192.0.2.1", l.client_message_rate, l, now + 4);
    REQUIRE(again);
    CHECK_FALSE(again->allowed);
    CHECK_FALSE(again->new_block);
    auto b = s.blocked(Kind::Client, "192.0.2.1", now + 5);
    REQUIRE(b);
    REQUIRE(*b);
    CHECK((*b)->key == "192.0.2.1");
    // Another client and the sender namespace are unaffected.
    CHECK_FALSE(*s.blocked(Kind::Client, "192.0.2.2", now + 5));
    CHECK_FALSE(*s.blocked(Kind::Sender, "192.0.2.1", now + 5));
    // Expiry.
    CHECK_FALSE(*s.blocked(Kind::Client, "192.0.2.1", now + 3 + 3600));
}

TEST_CASE("policy: rate windows reset", "[policy]") {
    TempDir dir;
    auto store = LimitsStore::open(dir.path);
    REQUIRE(store);
    Limits l = limits();
    int64_t now = 5000;
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 2; ++i) {
            auto v = (*store)->count_message(Kind::Sender, "a@example.org", l.sender_message_rate, l, now);
            REQUIRE(v);
            CHECK(v->allowed);
        }
        now += 60;  // next window
    }
    // limit 0: nothing counted.
    for (int i = 0; i < 10; ++i) CHECK((*store)->count_message(Kind::Sender, "b@example.org", 0, l, now)->allowed);
}

TEST_CASE("policy: list and clear blocks across opens", "[policy]") {
    TempDir dir;
    Limits l = limits();
    int64_t now = time(nullptr);
    {
        auto store = LimitsStore::open(dir.path);
        REQUIRE(store);
        for (int i = 0; i < 3; ++i) (void)(*store)->count_message(Kind::Sender, "x@example.org", 2, l, now);
        for (int i = 0; i < 4; ++i) (void)(*store)->count_message(Kind::Client, "198.51.100.7", 3, l, now);
    }
    auto none = LimitsStore::open_existing(dir.path + "/missing");
    REQUIRE(none);
    CHECK_FALSE(*none);
    auto store = LimitsStore::open_existing(dir.path);
    REQUIRE(store);
    REQUIRE(*store);
    auto list = (*store)->list_blocks(now);
    REQUIRE(list);
    REQUIRE(list->size() == 2);
    auto cleared = (*store)->clear("198.51.100.7");
    REQUIRE(cleared);
    CHECK(*cleared == 1);
    CHECK(*(*store)->clear("198.51.100.7") == 0);
    CHECK((*store)->list_blocks(now)->size() == 1);
    // The counter was reset too: the next message is allowed.
    CHECK((*store)->count_message(Kind::Client, "198.51.100.7", 3, l, now)->allowed);
}

TEST_CASE("policy: connection counts ignore dead processes", "[policy]") {
    TempDir dir;
    auto store = LimitsStore::open(dir.path);
    REQUIRE(store);
    auto& s = **store;
    pid_t me = getpid();
    pid_t gone = dead_pid();
    CHECK(*s.connect("192.0.2.9", gone) == 1);
    CHECK(*s.connect("192.0.2.9", gone) == 2);
    // gone is not alive: its two connections do not count against us.
    CHECK(*s.connect("192.0.2.9", me) == 1);
    CHECK(*s.connect("192.0.2.9", me) == 2);
    CHECK(*s.connect("192.0.2.10", me) == 1);
    REQUIRE(s.disconnect("192.0.2.9", me));
    CHECK(*s.connect("192.0.2.9", me) == 2);
    REQUIRE(s.forget_process(me));
    CHECK(*s.connect("192.0.2.9", me) == 1);
}

TEST_CASE("policy: prune drops ended windows and expired blocks", "[policy]") {
    TempDir dir;
    auto store = LimitsStore::open(dir.path);
    REQUIRE(store);
    auto& s = **store;
    Limits l = limits();
    int64_t now = 10000;
    for (int i = 0; i < 4; ++i) (void)s.count_message(Kind::Client, "192.0.2.1", 3, l, now);  // blocked
    (void)s.count_message(Kind::Client, "192.0.2.2", 3, l, now);
    auto none = s.prune(now + 10, l.unit_seconds);
    REQUIRE(none);
    CHECK(*none == 0);
    // Windows ended, block still active: only the two rate entries go.
    auto some = s.prune(now + 60, l.unit_seconds);
    REQUIRE(some);
    CHECK(*some == 2);
    CHECK(*s.blocked(Kind::Client, "192.0.2.1", now + 60));
    auto rest = s.prune(now + 3600, l.unit_seconds);
    REQUIRE(rest);
    CHECK(*rest == 1);
    CHECK(s.list_blocks(now)->empty());
}

TEST_CASE("policy: per-account message and recipient limits share one block", "[policy]") {
    TempDir dir;
    auto store = LimitsStore::open(dir.path);
    REQUIRE(store);
    auto& s = **store;
    Limits l = limits();
    int64_t now = 2000000;
    // Recipients: 40 + 50 fit a limit of 100, 20 more do not.
    REQUIRE(s.count_account_recipients("alice@example.org", 40, 100, l, now)->allowed);
    REQUIRE(s.count_account_recipients("alice@example.org", 50, 100, l, now + 1)->allowed);
    auto over = s.count_account_recipients("alice@example.org", 20, 100, l, now + 2);
    REQUIRE(over);
    CHECK_FALSE(over->allowed);
    REQUIRE(over->new_block);
    CHECK(over->new_block->kind == Kind::Account);
    CHECK(over->new_block->reason == "recipient rate 110/60s exceeds limit 100");
    CHECK(*s.blocked(Kind::Account, "alice@example.org", now + 3));
    CHECK_FALSE(*s.blocked(Kind::Sender, "alice@example.org", now + 3));
    auto blocks = s.list_blocks(now + 3);
    REQUIRE(blocks->size() == 1);
    CHECK((*blocks)[0].kind == Kind::Account);
    CHECK((*blocks)[0].key == "alice@example.org");
    CHECK(kind_name(Kind::Account) == "account");
    // Clearing lifts the block and resets both counters.
    CHECK(*s.clear("alice@example.org") == 1);
    CHECK_FALSE(*s.blocked(Kind::Account, "alice@example.org", now + 4));
    CHECK(s.count_account_recipients("alice@example.org", 100, 100, l, now + 5)->allowed);
    // Messages of the account count under their own key.
    CHECK(s.count_message(Kind::Account, "bob", 1, l, now)->allowed);
    CHECK_FALSE(s.count_message(Kind::Account, "bob", 1, l, now + 1)->allowed);
    CHECK(*s.blocked(Kind::Account, "bob", now + 2));
}

TEST_CASE("policy: per-uid limits (sendmail) are listed as uid and cleared by number", "[policy]") {
    TempDir dir;
    auto store = LimitsStore::open(dir.path);
    REQUIRE(store);
    auto& s = **store;
    Limits l = limits();
    int64_t now = 3000000;
    // Two messages fit a limit of 2; the third blocks uid 1001, not uid 1002.
    CHECK(s.count_message(Kind::Uid, "1001", 2, l, now)->allowed);
    CHECK(s.count_message(Kind::Uid, "1001", 2, l, now)->allowed);
    auto over = s.count_message(Kind::Uid, "1001", 2, l, now + 1);
    REQUIRE(over);
    CHECK_FALSE(over->allowed);
    REQUIRE(over->new_block);
    CHECK(over->new_block->reason == "message rate 3/60s exceeds limit 2");
    CHECK(s.count_message(Kind::Uid, "1002", 2, l, now + 1)->allowed);
    // Recipients count under their own key ("uid-rcpt:"), into the same block.
    auto many = s.count_recipients(Kind::Uid, "1002", 11, 10, l, now + 1);
    REQUIRE(many);
    CHECK_FALSE(many->allowed);
    REQUIRE(many->new_block);
    CHECK(many->new_block->kind == Kind::Uid);
    CHECK(kind_name(Kind::Uid) == "uid");
    auto blocks = s.list_blocks(now + 2);
    REQUIRE(blocks->size() == 2);
    CHECK((*blocks)[0].kind == Kind::Uid);
    CHECK((*blocks)[0].key == "1001");
    CHECK(*s.blocked(Kind::Uid, "1001", now + 2));
    CHECK_FALSE(*s.blocked(Kind::Account, "1001", now + 2));
    // clear lifts the block and resets both counters of that uid only.
    CHECK(*s.clear("1002") == 1);
    CHECK(s.count_recipients(Kind::Uid, "1002", 10, 10, l, now + 3)->allowed);
    CHECK(*s.blocked(Kind::Uid, "1001", now + 3));
    // The block ends by itself after block_seconds.
    CHECK_FALSE(*s.blocked(Kind::Uid, "1001", now + 1 + l.block_seconds));
}
