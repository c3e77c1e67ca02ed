// Unit tests for lib/lmdb: transactions, abort semantics, and map growth
// within one process and picked up across processes.
#include <catch2/catch.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "lib/lmdb/lmdb.hpp"

using namespace tern;

namespace {

struct LmdbTempDir {
    std::string path;
    LmdbTempDir() {
        char tmpl[] = "/tmp/tern-lmdb-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~LmdbTempDir() { std::filesystem::remove_all(path); }
};

lmdb::Env::Options tiny_map() {
    lmdb::Env::Options o;
    o.map_size = 64 * 1024;  // a few pages: growth is needed almost at once
    return o;
}

std::string key_of(int i) { return "key-" + std::to_string(100000 + i); }
std::string value_of(int i) { return std::string(300, char('a' + i % 26)) + std::to_string(i); }

lmdb::Dbi open_main(lmdb::Env& env) {
    lmdb::Dbi dbi;
    auto st = env.write([&](lmdb::Txn& txn) -> Status {
        auto d = txn.open_dbi("data", MDB_CREATE);
        if (!d) return d.error();
        dbi = *d;
        return {};
    });
    REQUIRE(st.ok());
    return dbi;
}

}  // namespace

TEST_CASE("lmdb: put, get, del and cursor walk", "[lmdb]") {
    LmdbTempDir dir;
    auto env = lmdb::Env::open(dir.path, {});
    REQUIRE(env.ok());
    auto dbi = open_main(**env);
    REQUIRE((*env)->write([&](lmdb::Txn& txn) -> Status {
        for (int i = 0; i < 10; ++i)
            if (auto st = txn.put(dbi, key_of(i), value_of(i)); !st) return st;
        auto d = txn.del(dbi, key_of(3));
        if (!d || !*d) return Error{"del failed"};
        auto again = txn.del(dbi, key_of(3));
        if (!again || *again) return Error{"second del should report absence"};
        return {};
    }).ok());

    auto txn = (*env)->begin_read();
    REQUIRE(txn.ok());
    auto v = txn->get(dbi, key_of(4));
    REQUIRE(v.ok());
    REQUIRE(v->has_value());
    CHECK(**v == value_of(4));
    auto missing = txn->get(dbi, key_of(3));
    REQUIRE(missing.ok());
    CHECK_FALSE(missing->has_value());

    auto cur = txn->cursor(dbi);
    REQUIRE(cur.ok());
    int n = 0;
    std::string last;
    for (auto e = cur->first(); e.ok() && e->has_value(); e = cur->next()) {
        CHECK(std::string((*e)->key) > last);
        last = std::string((*e)->key);
        ++n;
    }
    CHECK(n == 9);
    auto s = cur->seek("key-100005");
    REQUIRE(s.ok());
    REQUIRE(s->has_value());
    CHECK((*s)->key == key_of(5));
}

TEST_CASE("lmdb: put_ascending and an Appender append, and put a key that is not last as put() would", "[lmdb]") {
    LmdbTempDir dir;
    auto env = lmdb::Env::open(dir.path, {});
    REQUIRE(env.ok());
    auto dbi = open_main(**env);
    // Ascending (appended), then one below the last, one equal to an
    // existing key (replaced), one equal to the last key (replaced) and
    // one after the last again (appended, after the cursor moved away).
    auto puts = [&](auto put) {
        REQUIRE((*env)->write([&](lmdb::Txn& txn) -> Status {
            auto appender = txn.appender(dbi);
            if (!appender) return appender.error();
            auto one = [&](std::string_view key, std::string_view value) {
                return put(txn, *appender, key, value);
            };
            for (int i = 10; i < 400; ++i)
                if (auto st = one(key_of(i), value_of(i)); !st) return st;
            if (auto st = one(key_of(5), value_of(5)); !st) return st;
            if (auto st = one(key_of(20), "twenty"); !st) return st;
            if (auto st = one(key_of(399), "last"); !st) return st;
            return one(key_of(400), value_of(400));
        }).ok());
    };
    SECTION("Txn::put_ascending") {
        puts([&](lmdb::Txn& txn, lmdb::Appender&, std::string_view k, std::string_view v) { return txn.put_ascending(dbi, k, v); });
    }
    SECTION("an Appender") {
        puts([](lmdb::Txn&, lmdb::Appender& a, std::string_view k, std::string_view v) { return a.put(k, v); });
    }
    auto txn = (*env)->begin_read();
    REQUIRE(txn.ok());
    auto cur = txn->cursor(dbi);
    REQUIRE(cur.ok());
    std::vector<std::string> keys;
    for (auto e = cur->first(); e.ok() && e->has_value(); e = cur->next()) keys.emplace_back((*e)->key);
    REQUIRE(keys.size() == 392);
    CHECK(keys.front() == key_of(5));
    CHECK(keys.back() == key_of(400));
    CHECK(std::is_sorted(keys.begin(), keys.end()));
    CHECK(**txn->get(dbi, key_of(20)) == "twenty");
    CHECK(**txn->get(dbi, key_of(399)) == "last");
    CHECK(**txn->get(dbi, key_of(398)) == value_of(398));
}

TEST_CASE("lmdb: map grows transparently and all data stays readable", "[lmdb]") {
    LmdbTempDir dir;
    auto env = lmdb::Env::open(dir.path, tiny_map());
    REQUIRE(env.ok());
    size_t initial = (*env)->map_size();
    auto dbi = open_main(**env);

    // Many small transactions ...
    for (int i = 0; i < 300; ++i)
        REQUIRE((*env)->write([&](lmdb::Txn& txn) { return txn.put(dbi, key_of(i), value_of(i)); }).ok());
    // ... and one large one that has to be run again after growing.
    int runs = 0;
    REQUIRE((*env)->write([&](lmdb::Txn& txn) -> Status {
        ++runs;
        for (int i = 300; i < 3000; ++i)
            if (auto st = txn.put(dbi, key_of(i), value_of(i)); !st) return st;
        return {};
    }).ok());
    CHECK(runs > 1);
    CHECK((*env)->map_size() > initial);

    auto txn = (*env)->begin_read();
    REQUIRE(txn.ok());
    for (int i = 0; i < 3000; ++i) {
        auto v = txn->get(dbi, key_of(i));
        REQUIRE(v.ok());
        REQUIRE(v->has_value());
        REQUIRE(**v == value_of(i));
    }
}

TEST_CASE("lmdb: growth is refused, not deadlocked, while the thread holds a txn", "[lmdb]") {
    LmdbTempDir dir;
    auto env = lmdb::Env::open(dir.path, tiny_map());
    REQUIRE(env.ok());
    auto dbi = open_main(**env);
    auto reader = (*env)->begin_read();
    REQUIRE(reader.ok());
    auto st = (*env)->write([&](lmdb::Txn& txn) -> Status {
        for (int i = 0; i < 3000; ++i)
            if (auto s = txn.put(dbi, key_of(i), value_of(i)); !s) return s;
        return {};
    });
    CHECK_FALSE(st.ok());
    reader->abort();
    // Without the reader the same write succeeds.
    CHECK((*env)->write([&](lmdb::Txn& txn) -> Status {
        for (int i = 0; i < 3000; ++i)
            if (auto s = txn.put(dbi, key_of(i), value_of(i)); !s) return s;
        return {};
    }).ok());
}

TEST_CASE("lmdb: an error in write() aborts and leaves nothing written", "[lmdb]") {
    LmdbTempDir dir;
    auto env = lmdb::Env::open(dir.path, {});
    REQUIRE(env.ok());
    auto dbi = open_main(**env);
    auto st = (*env)->write([&](lmdb::Txn& txn) -> Status {
        if (auto s = txn.put(dbi, "a", "1"); !s) return s;
        if (auto s = txn.put(dbi, "b", "2"); !s) return s;
        return Error{"caller changed its mind"};
    });
    REQUIRE_FALSE(st.ok());
    CHECK(st.message() == "caller changed its mind");

    // A Txn dropped without commit aborts too.
    {
        auto txn = (*env)->begin_write();
        REQUIRE(txn.ok());
        REQUIRE(txn->put(dbi, "c", "3").ok());
    }
    // An LMDB error (key too long) is returned, not retried.
    auto too_long = (*env)->write([&](lmdb::Txn& txn) { return txn.put(dbi, std::string(4000, 'k'), "v"); });
    CHECK_FALSE(too_long.ok());

    auto txn = (*env)->begin_read();
    REQUIRE(txn.ok());
    for (const char* k : {"a", "b", "c"}) {
        auto v = txn->get(dbi, k);
        REQUIRE(v.ok());
        CHECK_FALSE(v->has_value());
    }
}

TEST_CASE("lmdb: growth by another process is picked up (MDB_MAP_RESIZED)", "[lmdb]") {
    LmdbTempDir dir;
    auto env = lmdb::Env::open(dir.path, tiny_map());
    REQUIRE(env.ok());
    auto dbi = open_main(**env);
    size_t before = (*env)->map_size();

    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // The child opens its own environment (never the parent's handle)
        // and fills it far beyond the parent's map.
        int rc = 1;
        {
            auto child = lmdb::Env::open(dir.path, tiny_map());
            if (child.ok()) {
                auto st = (*child)->write([&](lmdb::Txn& txn) -> Status {
                    auto d = txn.open_dbi("data", 0);
                    if (!d) return d.error();
                    for (int i = 0; i < 3000; ++i)
                        if (auto s = txn.put(*d, key_of(i), value_of(i)); !s) return s;
                    return {};
                });
                rc = st.ok() ? 0 : 2;
            }
        }
        ::_exit(rc);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);

    // Reading and writing here must adopt the child's larger map.
    {
        auto txn = (*env)->begin_read();
        REQUIRE(txn.ok());
        for (int i = 0; i < 3000; i += 7) {
            auto v = txn->get(dbi, key_of(i));
            REQUIRE(v.ok());
            REQUIRE(v->has_value());
            REQUIRE(**v == value_of(i));
        }
    }
    CHECK((*env)->map_size() > before);
    CHECK((*env)->write([&](lmdb::Txn& txn) { return txn.put(dbi, "parent", "after"); }).ok());
}

TEST_CASE("lmdb: growth while another thread reads", "[lmdb]") {
    LmdbTempDir dir;
    auto env = lmdb::Env::open(dir.path, tiny_map());
    REQUIRE(env.ok());
    auto dbi = open_main(**env);
    std::atomic<bool> writing{true};
    std::atomic<int> read_errors{0}, reads{0};
    std::thread reader([&] {
        while (writing) {
            auto txn = (*env)->begin_read();
            if (!txn) {
                ++read_errors;
                continue;
            }
            auto v = txn->get(dbi, key_of(0));
            if (!v) ++read_errors;
            ++reads;
        }
    });
    bool all_ok = true;
    for (int i = 0; i < 1500; ++i)
        all_ok &= (*env)->write([&](lmdb::Txn& txn) { return txn.put(dbi, key_of(i), value_of(i)); }).ok();
    writing = false;
    reader.join();
    CHECK(all_ok);
    CHECK(read_errors == 0);
    CHECK(reads > 0);
    CHECK((*env)->map_size() > 64 * 1024);
}
