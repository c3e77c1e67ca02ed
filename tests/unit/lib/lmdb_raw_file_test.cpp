// Unit tests for lib/lmdb/raw_file: an LMDB file's last commit read from
// the file agrees with what LMDB itself says of it (page size, txnid, the
// main database's values and a named database's record count), follows
// each commit, and declines what it cannot read exactly.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "lib/core/fd.hpp"
#include "lib/lmdb/lmdb.hpp"
#include "lib/lmdb/raw_file.hpp"

using namespace tern;

namespace {

constexpr lmdb::Dbi kMain{1};  // LMDB's MAIN_DBI

struct RawFile {
    std::string dir, path;
    std::unique_ptr<lmdb::Env> env;
    lmdb::Dbi items;
    RawFile() {
        char tmpl[] = "/tmp/tern-lmdb-raw-XXXXXX";
        dir = ::mkdtemp(tmpl);
        path = dir + "/index.lmdb";
        lmdb::Env::Options o;
        o.flags = MDB_NOSUBDIR;
        auto e = lmdb::Env::open(path, o);
        REQUIRE(e.ok());
        env = std::move(*e);
        REQUIRE(env->write([&](lmdb::Txn& txn) -> Status {
                       auto d = txn.open_dbi("items", MDB_CREATE);
                       if (!d) return d.error();
                       items = *d;
                       return {};
                   }).ok());
    }
    ~RawFile() { std::filesystem::remove_all(dir); }
    void put(lmdb::Dbi dbi, const std::string& key, const std::string& value) {
        REQUIRE(env->write([&](lmdb::Txn& txn) { return txn.put(dbi, key, value); }).ok());
    }
    MDB_envinfo info() const {
        MDB_envinfo i{};
        REQUIRE(mdb_env_info(env->get(), &i) == 0);
        return i;
    }
    Fd fd() const { return Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)); }
};

}  // namespace

TEST_CASE("lmdb raw file: the last commit as LMDB wrote it", "[lmdb][raw]") {
    RawFile f;
    f.put(kMain, "plain", "value one");
    for (int i = 0; i < 5; ++i) f.put(f.items, "k" + std::to_string(i), "v");
    auto fd = f.fd();
    REQUIRE(fd);
    MDB_stat st{};
    REQUIRE(mdb_env_stat(f.env->get(), &st) == 0);
    for (uint32_t hint : {0u, st.ms_psize, 512u}) {  // none, right, wrong
        auto meta = lmdb::raw::read_meta(fd.get(), hint);
        REQUIRE(meta);
        CHECK(meta->page_size == st.ms_psize);
        CHECK(meta->txnid == f.info().me_last_txnid);
        CHECK(meta->main_depth == 1);
        auto leaf = lmdb::raw::read_main_leaf(fd.get(), hint);
        REQUIRE(leaf);
        CHECK(leaf->meta == *meta);
        const auto* plain = leaf->find("plain");
        REQUIRE(plain);
        CHECK(!plain->named_db);
        CHECK(plain->value == "value one");
        const auto* items = leaf->find("items");
        REQUIRE(items);
        CHECK(items->named_db);
        CHECK(items->entries == 5);
        CHECK(leaf->find("absent") == nullptr);
    }
    // Each commit is seen: a new txnid, the new value.
    uint64_t before = lmdb::raw::read_meta(fd.get())->txnid;
    f.put(kMain, "plain", "value two");
    auto leaf = lmdb::raw::read_main_leaf(fd.get());
    REQUIRE(leaf);
    CHECK(leaf->meta.txnid == before + 1);
    CHECK(leaf->find("plain")->value == "value two");
}

TEST_CASE("lmdb raw file: declines what it cannot read exactly", "[lmdb][raw]") {
    SECTION("not an LMDB file") {
        char tmpl[] = "/tmp/tern-lmdb-raw-XXXXXX";
        std::string dir = ::mkdtemp(tmpl);
        std::ofstream(dir + "/junk") << std::string(20000, 'x');
        Fd fd(::open((dir + "/junk").c_str(), O_RDONLY | O_CLOEXEC));
        CHECK(!lmdb::raw::read_meta(fd.get()));
        CHECK(!lmdb::raw::read_main_leaf(fd.get(), 4096));
        std::filesystem::remove_all(dir);
    }
    SECTION("a main database too big for one page") {
        RawFile f;
        REQUIRE(f.env->write([&](lmdb::Txn& txn) -> Status {
                       for (int i = 0; i < 400; ++i)
                           if (auto s = txn.put(kMain, "key" + std::to_string(i), std::string(40, 'v')); !s) return s;
                       return {};
                   }).ok());
        auto fd = f.fd();
        auto meta = lmdb::raw::read_meta(fd.get());
        REQUIRE(meta);
        CHECK(meta->main_depth > 1);
        CHECK(!lmdb::raw::read_main_leaf(fd.get()));
    }
    SECTION("a value on overflow pages is skipped, not misread") {
        RawFile f;
        f.put(kMain, "big", std::string(10000, 'b'));
        f.put(kMain, "small", "s");
        auto fd = f.fd();
        auto leaf = lmdb::raw::read_main_leaf(fd.get());
        REQUIRE(leaf);
        CHECK(leaf->find("big") == nullptr);
        REQUIRE(leaf->find("small"));
        CHECK(leaf->find("small")->value == "s");
    }
}
