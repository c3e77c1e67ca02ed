// Unit tests for SELECT answered early (Store::open's EarlyAnswer): a
// folder's first SELECT before its records are written
// (FolderIndex::build_first), and a cold index's from its file before it
// is opened (FolderIndex::answerable_header).  The figures told are those
// the Mailbox then shows; folders it does not apply to are opened as
// before without an answer; a new index's databases are created in the
// build's commit, and another thread that opens the folder meanwhile
// waits for them.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "lib/mailstore/folder_index.hpp"
#include "lib/mailstore/maildir_store.hpp"

using namespace tern::mailstore;
namespace fs = std::filesystem;

namespace {

struct EarlyRoot {
    fs::path path;
    std::unique_ptr<Store> store;
    EarlyRoot() {
        char tmpl[] = "/tmp/tern-early-XXXXXX";
        path = ::mkdtemp(tmpl);
        path /= "Maildir";
        store = open_store();
    }
    ~EarlyRoot() { fs::remove_all(path.parent_path()); }
    std::unique_ptr<Store> open_store() const {
        MaildirOptions o;
        o.root = path.string();
        auto s = open_maildir_store(o);
        REQUIRE(s.ok());
        return std::move(*s);
    }
    // A message file as another MDA leaves it: sizes in the name when
    // `sized`, flags after ":2,"; in cur/ or (without flags) in new/.
    void put(const std::string& sub, const std::string& base, const std::string& flags, bool sized = true) const {
        std::string body = "Subject: " + base + "\n\nx\n";
        std::string name = base;
        if (sized) name += ",S=" + std::to_string(body.size()) + ",W=" + std::to_string(body.size() + 3);
        if (sub == "cur") name += ":2," + flags;
        FILE* f = std::fopen((path / sub / name).c_str(), "w");
        REQUIRE(f);
        std::fputs(body.c_str(), f);
        std::fclose(f);
    }
    uint64_t last_txnid() const {
        auto idx = FolderIndex::open(path.string(), (path / "tern-index.lmdb").string());
        REQUIRE(idx.ok());
        MDB_envinfo info{};
        REQUIRE(mdb_env_info((*idx)->env().get(), &info) == 0);
        return info.me_last_txnid;
    }
};

struct Told {
    int calls = 0;
    OpenAnswer answer;
    EarlyAnswer callback() {
        return [this](const OpenAnswer& a) {
            ++calls;
            answer = a;
        };
    }
};

// The figures an answer told, for comparison with the expected ones.
struct Figures {
    uint32_t messages, uidnext, recent, unseen, deleted, first_unseen;
    bool operator==(const Figures&) const = default;
};
Figures figures(const OpenAnswer& a) {
    return {a.status.messages, a.status.uidnext, a.status.recent, a.status.unseen, a.status.deleted, a.first_unseen};
}

// The mailbox open() returned shows what was told (after its \Recent claim).
void check_shows_told(Mailbox& mb, const OpenAnswer& told) {
    REQUIRE(mb.claim_recent().ok());
    auto st = mb.status();
    const auto& a = told.status;
    CHECK(st.messages == a.messages);
    CHECK(st.uidvalidity == a.uidvalidity);
    CHECK(st.uidnext == a.uidnext);
    CHECK(st.highestmodseq == a.highestmodseq);
    CHECK(st.recent == a.recent);
    CHECK(st.unseen == a.unseen);
    CHECK(st.deleted == a.deleted);
    CHECK(st.size == a.size);
    auto unseen = mb.first_unseen();
    REQUIRE(unseen.ok());
    CHECK(*unseen == told.first_unseen);
    CHECK(told.keywords == mb.keywords());
}

// SELECT's open of INBOX with an early answer: it must come, once, and be
// what the mailbox shows.
std::unique_ptr<Mailbox> open_told(EarlyRoot& t, Told& told) {
    auto early = told.callback();
    auto mb = t.store->open("INBOX", false, true, &early);
    REQUIRE(mb.ok());
    REQUIRE(told.calls == 1);
    check_shows_told(**mb, told.answer);
    return std::move(*mb);
}

}  // namespace

TEST_CASE("mailstore early answer: a first SELECT tells what the mailbox then shows", "[mailstore][early]") {
    EarlyRoot t;
    t.put("cur", "1700000001.M1P1.host", "S");
    t.put("cur", "1700000002.M2P1.host", "ST");   // seen and deleted
    t.put("cur", "1700000003.M3P1.host", "");     // the first unseen: 3
    t.put("cur", "1700000004.M4P1.host", "FS");
    t.put("cur", "1700000003.M3P1.host", "S");    // the same base again: indexed once, later
    t.put("new", "1700000005.M5P1.host", "");     // moved to cur/ by the build
    REQUIRE(!fs::exists(t.path / "tern-index.lmdb"));
    Told told;
    auto mb = open_told(t, told);
    CHECK(figures(told.answer) == Figures{5, 6, 5, 2, 1, 3});
    // What was built is what any later session sees.
    auto other = t.open_store()->open("INBOX");
    REQUIRE(other.ok());
    CHECK((*other)->status().messages == 5);
    CHECK((*other)->status().uidnext == 6);
}

TEST_CASE("mailstore early answer: the databases are created in the build's one commit", "[mailstore][early]") {
    EarlyRoot t;
    for (int i = 0; i < 20; ++i) t.put("cur", std::to_string(1700000000 + i) + ".M1P1.host", "S");
    Told told;
    auto early = told.callback();
    REQUIRE(t.store->open("INBOX", false, true, &early).ok());
    CHECK(told.calls == 1);
    CHECK(t.last_txnid() == 1);
}

TEST_CASE("mailstore early answer: folders it does not apply to are opened without one", "[mailstore][early]") {
    EarlyRoot t;
    Told told;
    auto early = told.callback();
    SECTION("an empty folder") {
        auto mb = t.store->open("INBOX", false, true, &early);
        REQUIRE(mb.ok());
        CHECK((*mb)->status().messages == 0);
    }
    SECTION("a file whose name does not tell its sizes (it must be read)") {
        t.put("cur", "1700000001.M1P1.host", "S");
        t.put("cur", "1700000002.M2P1.host", "", false);
        auto mb = t.store->open("INBOX", false, true, &early);
        REQUIRE(mb.ok());
        CHECK((*mb)->status().messages == 2);
    }
    SECTION("an index built already") {
        t.put("cur", "1700000001.M1P1.host", "S");
        REQUIRE(t.store->open("INBOX").ok());
        t.put("cur", "1700000002.M2P1.host", "");
        auto mb = t.store->open("INBOX", false, true, &early);
        REQUIRE(mb.ok());
        CHECK((*mb)->status().messages == 2);
    }
    CHECK(told.calls == 0);
}

TEST_CASE("mailstore early answer: another thread that opens the folder meanwhile waits for its databases",
          "[mailstore][early]") {
    EarlyRoot t;
    for (int i = 0; i < 50; ++i) t.put("cur", std::to_string(1700000000 + i) + ".M1P1.host", "S");
    std::atomic<bool> opened{false};
    std::atomic<uint32_t> seen{0};
    std::thread other;
    auto second = t.open_store();
    EarlyAnswer early = [&](const OpenAnswer&) {
        // The build holds its write transaction; its databases are not created yet.
        other = std::thread([&] {
            auto mb = second->open("INBOX");
            if (mb.ok()) seen = (*mb)->status().messages;
            opened = true;
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        CHECK(!opened);
    };
    auto mb = t.store->open("INBOX", false, true, &early);
    REQUIRE(mb.ok());
    REQUIRE(other.joinable());
    other.join();
    CHECK(opened);
    CHECK(seen == 50);
}

TEST_CASE("mailstore early answer: a cold index is answered from its file's last commit", "[mailstore][early]") {
    EarlyRoot t;
    t.put("cur", "1700000001.M1P1.host", "S");
    t.put("cur", "1700000002.M2P1.host", "");      // the first unseen: 2
    t.put("cur", "1700000003.M3P1.host", "ST");
    {
        auto mb = t.store->open("INBOX", false, true);  // builds the index, claims \Recent
        REQUIRE(mb.ok());
        REQUIRE((*mb)->claim_recent().ok());
        Flags flagged{kFlagged, {"$Work"}};
        REQUIRE((*mb)->store_flags(std::vector<uint32_t>{2}, FlagOp::Add, flagged).ok());
    }
    // (cur/'s listing is younger than a second: its one check is to come.)
    FolderIndex::drop_kept_open();  // as after a restart
    Told told;
    auto mb = open_told(t, told);
    CHECK(figures(told.answer) == Figures{3, 4, 0, 1, 1, 2});
    CHECK(told.answer.keywords == std::vector<std::string>{"$Work"});
    // The index is open now: the next SELECT is answered after its open.
    Told again;
    auto early2 = again.callback();
    REQUIRE(t.store->open("INBOX", false, true, &early2).ok());
    CHECK(again.calls == 0);
}

TEST_CASE("mailstore early answer: a cold index whose folder says more is opened first", "[mailstore][early]") {
    EarlyRoot t;
    t.put("cur", "1700000001.M1P1.host", "S");
    REQUIRE(t.store->open("INBOX", false, true).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    REQUIRE(t.open_store()->open("INBOX").ok());
    Told told;
    auto early = told.callback();
    SECTION("a message in new/") {
        t.put("new", "1700000002.M2P1.host", "");
        FolderIndex::drop_kept_open();
        auto mb = t.store->open("INBOX", false, true, &early);
        REQUIRE(mb.ok());
        CHECK((*mb)->status().messages == 2);
    }
    SECTION("a file another tool put in cur/") {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a later mtime
        t.put("cur", "1700000002.M2P1.host", "S");
        FolderIndex::drop_kept_open();
        auto mb = t.store->open("INBOX", false, true, &early);
        REQUIRE(mb.ok());
        CHECK((*mb)->status().messages == 2);
    }
    SECTION("messages no session has claimed as \\Recent") {
        {
            auto mb = t.store->open("INBOX");
            REQUIRE(mb.ok());
        }
        t.put("new", "1700000002.M2P1.host", "");
        {
            auto mb = t.store->open("INBOX");  // moves it, claims nothing
            REQUIRE(mb.ok());
        }
        FolderIndex::drop_kept_open();
        auto mb = t.store->open("INBOX", false, true, &early);
        REQUIRE(mb.ok());
        REQUIRE((*mb)->claim_recent().ok());
        CHECK((*mb)->status().recent == 1);
    }
    CHECK(told.calls == 0);
}

TEST_CASE("mailstore early answer: what the check of a young listing finds after the answer is news",
          "[mailstore][early]") {
    // Another tool adds a file to cur/ in the clock tick of the index's
    // listing (here: the mtime set back), so that only the one check of
    // that listing, a second later, can see it.  The answer tells the
    // index's state; open() makes the check; the next refresh() reports it.
    EarlyRoot t;
    t.put("cur", "1700000001.M1P1.host", "S");
    REQUIRE(t.store->open("INBOX", false, true).ok());
    struct stat before {};
    REQUIRE(::stat((t.path / "cur").c_str(), &before) == 0);
    t.put("cur", "1700000002.M2P1.host", "");
    const struct timespec times[2] = {before.st_atim, before.st_mtim};
    REQUIRE(::utimensat(AT_FDCWD, (t.path / "cur").c_str(), times, 0) == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    FolderIndex::drop_kept_open();
    Told told;
    auto early = told.callback();
    auto mb = t.store->open("INBOX", false, true, &early);
    REQUIRE(mb.ok());
    REQUIRE(told.calls == 1);
    CHECK(told.answer.status.messages == 1);
    // The session's view is what was told (the new file is claimed as
    // \Recent, for the refresh to report).
    REQUIRE((*mb)->claim_recent().ok());
    CHECK((*mb)->status().messages == 1);
    CHECK((*mb)->status().uidnext == told.answer.status.uidnext);
    CHECK((*mb)->view().size() == 1);
    auto changes = (*mb)->refresh();
    REQUIRE(changes.ok());
    CHECK(changes->exists == 2);
    CHECK(changes->new_uids.size() == 1);
    CHECK((*mb)->status().messages == 2);
}
