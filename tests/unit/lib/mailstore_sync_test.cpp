// Unit tests for FolderIndex::sync()'s cheap paths (lib/mailstore): a
// refresh after a delivery moves the delivered file from new/ without
// listing cur/; a change another tool made to cur/ is still found, also
// one hidden in the clock tick of such a move (found by the check a
// second later); the table a listing is compared with; the header's copy
// in LMDB's main database; the main root's hint; the \Recent claim of a
// first SELECT.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "lib/mailstore/folder_index.hpp"
#include "lib/mailstore/maildir_store.hpp"
#include "lib/mailstore/name_table.hpp"
#include "lib/mailstore/root_hint.hpp"

using namespace tern::mailstore;
namespace fs = std::filesystem;

namespace {

struct SyncRoot {
    fs::path path;
    SyncRoot() {
        char tmpl[] = "/tmp/tern-sync-XXXXXX";
        path = ::mkdtemp(tmpl);
        path /= "Maildir";
        MaildirOptions o;
        o.root = path.string();
        auto s = open_maildir_store(o);
        REQUIRE(s.ok());
        store = std::move(*s);
    }
    ~SyncRoot() { fs::remove_all(path.parent_path()); }
    std::unique_ptr<Store> store;

    std::unique_ptr<Mailbox> open() {
        auto mb = store->open("INBOX");
        REQUIRE(mb.ok());
        return std::move(*mb);
    }
    // SELECT (EXAMINE when read_only): an open that claims \Recent.
    std::unique_ptr<Mailbox> select(bool read_only = false) {
        auto mb = store->open("INBOX", read_only, true);
        REQUIRE(mb.ok());
        REQUIRE((*mb)->claim_recent().ok());
        return std::move(*mb);
    }
    // The index this process shares between its Mailboxes of INBOX.
    std::shared_ptr<FolderIndex> index() const {
        auto idx = FolderIndex::open(path.string(), (path / "tern-index.lmdb").string());
        REQUIRE(idx.ok());
        return *idx;
    }
    // A delivery as local-delivery makes it: into new/, its record naming it as cur/ will.
    uint32_t deliver(const std::string& subject) {
        MaildirOptions o;
        o.root = path.string();
        auto other = open_maildir_store(o);
        REQUIRE(other.ok());
        auto start = (*other)->begin_delivery(DeliveryOptions{});
        REQUIRE(start.ok());
        REQUIRE(start->outcome == DeliveryStart::Outcome::Write);
        REQUIRE(start->writer->write("From: a@example.org\nSubject: " + subject + "\n\nbody\n").ok());
        auto uid = start->writer->commit(Flags{});
        REQUIRE(uid.ok());
        return *uid;
    }
    struct timespec cur_mtime() const {
        struct stat st {};
        REQUIRE(::stat((path / "cur").c_str(), &st) == 0);
        return st.st_mtim;
    }
    void set_cur_mtime(struct timespec when) const {
        struct timespec times[2] = {when, when};
        REQUIRE(::utimensat(AT_FDCWD, (path / "cur").c_str(), times, 0) == 0);
    }
    // cur/ as it is on a server where it last changed a while ago: its
    // mtime old enough to trust, recorded by a refresh.
    void age_cur(Mailbox& mb) const {
        struct timespec old = cur_mtime();
        old.tv_sec -= 10;
        set_cur_mtime(old);
        auto ch = mb.refresh();
        REQUIRE(ch.ok());
    }
    size_t files(const char* sub) const {
        size_t n = 0;
        for (auto& e : fs::directory_iterator(path / sub)) n += e.is_regular_file();
        return n;
    }
};

// Fills INBOX with n messages through the store (APPEND).
void fill(Mailbox& mb, int n) {
    for (int i = 0; i < n; ++i) {
        auto w = mb.append();
        REQUIRE(w.ok());
        REQUIRE((*w)->write("Subject: m" + std::to_string(i) + "\r\n\r\nx\r\n").ok());
        REQUIRE((*w)->commit(Flags{}).ok());
    }
}

// Refreshes until a refresh reports expunged messages (or the deadline
// passes): how many it reported.
size_t expunged_within_seconds(Mailbox& mb, int seconds) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
        auto r = mb.refresh();
        REQUIRE(r.ok());
        if (!r->expunged_uids.empty()) return r->expunged_uids.size();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return 0;
}

std::string cur_name_of(const SyncRoot& t, const std::string& prefix) {
    for (auto& e : fs::directory_iterator(t.path / "cur")) {
        std::string n = e.path().filename().string();
        if (n.rfind(prefix, 0) == 0) return n;
    }
    return {};
}

}  // namespace

TEST_CASE("mailstore sync: a delivery's refresh moves its file without listing cur/", "[mailstore][sync]") {
    SyncRoot t;
    auto a = t.open();
    auto b = t.open();
    fill(*a, 20);
    REQUIRE(a->refresh().ok());
    REQUIRE(b->refresh().ok());
    t.age_cur(*a);
    auto idx = t.index();
    uint64_t listings = idx->cur_listings();

    uint32_t uid = t.deliver("one");
    CHECK(t.files("new") == 1);
    auto ch = a->refresh();
    REQUIRE(ch.ok());
    CHECK(ch->new_uids == std::vector<uint32_t>{uid});
    CHECK(t.files("new") == 0);
    CHECK(t.files("cur") == 21);
    // The other session finds the message, and cur/'s new mtime known.
    auto other = b->refresh();
    REQUIRE(other.ok());
    CHECK(other->new_uids == std::vector<uint32_t>{uid});
    // Two deliveries at once, then a session that was not told yet.
    uint32_t second = t.deliver("two"), third = t.deliver("three");
    ch = b->refresh();
    REQUIRE(ch.ok());
    CHECK(ch->new_uids == std::vector<uint32_t>{second, third});
    CHECK(t.files("cur") == 23);
    CHECK(idx->cur_listings() == listings);
    // The session's view and what the index keeps agree with the files.
    REQUIRE(a->refresh().ok());
    CHECK(a->view().size() == 23);
    CHECK(a->status().messages == 23);
    CHECK(a->status().unseen == 23);
    auto body = a->open_body(third);
    REQUIRE(body.ok());
    CHECK((*body)->bytes().find("Subject: three") != std::string_view::npos);
}

TEST_CASE("mailstore sync: cur/ changed by another tool before a delivery is compared in full", "[mailstore][sync]") {
    SyncRoot t;
    auto mb = t.open();
    fill(*mb, 5);
    t.age_cur(*mb);
    auto idx = t.index();
    uint64_t listings = idx->cur_listings();
    // mutt marks the first message seen (a rename in cur/), then a delivery.
    std::string first = cur_name_of(t, "");
    REQUIRE_FALSE(first.empty());
    fs::rename(t.path / "cur" / first, t.path / "cur" / (first + "S"));
    uint32_t uid = t.deliver("late");
    auto ch = mb->refresh();
    REQUIRE(ch.ok());
    CHECK(ch->new_uids == std::vector<uint32_t>{uid});
    CHECK(ch->flag_changes.size() == 1);
    CHECK(idx->cur_listings() > listings);
    CHECK(mb->status().unseen == 5);
}

TEST_CASE("mailstore sync: a change hidden in the clock tick of a delivery's move is found a second later",
          "[mailstore][sync]") {
    // A file system with a coarse clock gives cur/ the same mtime for
    // another tool's change made in the tick of our move: emulated by
    // setting the mtime back.  The move is trusted for a second, then
    // checked by one listing.
    SyncRoot t;
    auto mb = t.open();
    fill(*mb, 5);
    t.age_cur(*mb);
    uint32_t uid = t.deliver("tick");
    auto ch = mb->refresh();
    REQUIRE(ch.ok());
    REQUIRE(ch->new_uids == std::vector<uint32_t>{uid});
    struct timespec moved = t.cur_mtime();
    std::string victim = cur_name_of(t, "");
    REQUIRE_FALSE(victim.empty());
    fs::remove(t.path / "cur" / victim);
    t.set_cur_mtime(moved);

    auto idx = t.index();
    uint64_t listings = idx->cur_listings();
    CHECK(expunged_within_seconds(*mb, 10) == 1);
    CHECK(idx->cur_listings() > listings);
    CHECK(mb->status().messages == 5);
    // Checked: the next refresh lists nothing.
    listings = idx->cur_listings();
    REQUIRE(mb->refresh().ok());
    CHECK(idx->cur_listings() == listings);
}

TEST_CASE("mailstore sync: a file in new/ the index does not name is indexed as before", "[mailstore][sync]") {
    SyncRoot t;
    auto mb = t.open();
    fill(*mb, 3);
    t.age_cur(*mb);
    uint32_t uid = t.deliver("ours");
    // Another delivery agent's file next to ours.
    {
        std::string name = "1700000000.M1P1.other,S=6,W=7";
        FILE* f = std::fopen((t.path / "new" / name).c_str(), "w");
        REQUIRE(f);
        std::fputs("\nhello", f);
        std::fclose(f);
    }
    auto ch = mb->refresh();
    REQUIRE(ch.ok());
    REQUIRE(ch->new_uids.size() == 2);
    CHECK(ch->new_uids[0] == uid);
    CHECK(t.files("new") == 0);
    CHECK(t.files("cur") == 5);
    CHECK(mb->status().messages == 5);
}

TEST_CASE("mailstore sync: a listing's name table takes each name once", "[mailstore][sync]") {
    std::vector<std::string> names;
    for (int i = 0; i < 1000; ++i) names.push_back("17000" + std::to_string(i) + ".M1P1.host,S=1,W=2:2," + (i % 2 ? "S" : ""));
    names.push_back(names[7]);  // readdir() may return a name twice while files are renamed
    NameTable table(names);
    CHECK(table.left() == 1000);
    CHECK(table.take(names[999]));
    CHECK_FALSE(table.take(names[999]));  // taken already: a second record of the same name
    CHECK_FALSE(table.take("17000999.M1P1.host,S=1,W=2:2,"));  // another name of that base
    CHECK_FALSE(table.take(""));
    for (int i = 0; i < 999; ++i) CHECK(table.take(names[static_cast<size_t>(i)]));
    CHECK(table.left() == 0);
    NameTable empty(std::vector<std::string>{});
    CHECK(empty.left() == 0);
    CHECK_FALSE(empty.take("x"));
}

TEST_CASE("mailstore sync: a listing that differs from the records in one name is not taken as unchanged",
          "[mailstore][sync]") {
    SyncRoot t;
    auto mb = t.open();
    fill(*mb, 30);
    auto told = mb->refresh();
    REQUIRE(told.ok());
    REQUIRE(told->new_uids.size() == 30);
    // cur/'s mtime is new (the appends): each refresh compares the listing.
    std::string name = cur_name_of(t, "");
    REQUIRE_FALSE(name.empty());
    fs::rename(t.path / "cur" / name, t.path / "cur" / (name + "F"));
    auto ch = mb->refresh();
    REQUIRE(ch.ok());
    CHECK(ch->flag_changes.size() == 1);
    size_t flagged = 0;
    for (const auto& e : mb->view()) flagged += (e.flags & kFlagged) != 0;
    CHECK(flagged == 1);
    auto quiet = mb->refresh();
    REQUIRE(quiet.ok());
    CHECK_FALSE(quiet->any());
}

namespace {

uint64_t last_txnid(const SyncRoot& t) {
    MDB_envinfo info{};
    REQUIRE(mdb_env_info(t.index()->env().get(), &info) == 0);
    return info.me_last_txnid;
}

void put_foreign_files(const SyncRoot& t, int n) {
    for (int i = 0; i < n; ++i) {
        std::string body = "Subject: f" + std::to_string(i) + "\n\nx\n";
        std::string name = std::to_string(1700000000 + i) + ".M1P1.other,S=" + std::to_string(body.size()) +
                           ",W=" + std::to_string(body.size() + 3) + ":2,";
        FILE* f = std::fopen((t.path / "cur" / name).c_str(), "w");
        REQUIRE(f);
        std::fputs(body.c_str(), f);
        std::fclose(f);
    }
}

}  // namespace

TEST_CASE("mailstore sync: a first SELECT claims \\Recent in the transaction that assigns the UIDs",
          "[mailstore][sync]") {
    SyncRoot t;
    put_foreign_files(t, 7);
    auto a = t.store->open("INBOX", false, true);
    REQUIRE(a.ok());
    uint64_t txnid = last_txnid(t);
    REQUIRE((*a)->claim_recent().ok());
    CHECK(last_txnid(t) == txnid);  // no commit of its own
    CHECK((*a)->recent_count() == 7);
    CHECK((*a)->is_recent(1));
    CHECK((*a)->is_recent(7));
    CHECK((*a)->status().recent == 7);
    // Taken for good: another session, EXAMINE and STATUS see none.
    auto b = t.select();
    CHECK(b->recent_count() == 0);
    CHECK(t.select(true)->recent_count() == 0);
    CHECK(t.store->status("INBOX")->recent == 0);
    // A later delivery goes to the first session that refreshes, as before.
    uint32_t uid = t.deliver("later");
    auto ch = b->refresh();
    REQUIRE(ch.ok());
    CHECK(b->is_recent(uid));
    CHECK(b->recent_count() == 1);
    REQUIRE((*a)->refresh().ok());
    CHECK_FALSE((*a)->is_recent(uid));
    CHECK((*a)->recent_count() == 7);
}

TEST_CASE("mailstore sync: EXAMINE of a new folder claims nothing", "[mailstore][sync]") {
    SyncRoot t;
    put_foreign_files(t, 3);
    CHECK(t.select(true)->recent_count() == 3);
    CHECK(t.select()->recent_count() == 3);
}

TEST_CASE("mailstore header copy: SELECT reads the main database's copy when the last commit wrote it",
          "[mailstore][sync]") {
    SyncRoot t;
    auto mb = t.open();
    fill(*mb, 4);
    auto idx = t.index();
    auto compare = [&](bool expect_copy) {
        auto txn = idx->env().begin_read();
        REQUIRE(txn.ok());
        auto fast = idx->read_meta(*txn);
        auto slow = idx->read_meta(*txn, false);
        REQUIRE(fast.ok());
        REQUIRE(slow.ok());
        CHECK(fast->from_copy == expect_copy);
        CHECK_FALSE(slow->from_copy);
        CHECK(fast->uidvalidity == slow->uidvalidity);
        CHECK(fast->uidnext == slow->uidnext);
        CHECK(fast->modseq == slow->modseq);
        CHECK(fast->cur_mtime == slow->cur_mtime);
        CHECK(fast->cur_dirty_mtime == slow->cur_dirty_mtime);
        CHECK(fast->recent_uid == slow->recent_uid);
        CHECK(fast->counts == slow->counts);
        CHECK(fast->counts_valid == slow->counts_valid);
        CHECK(fast->view_valid == slow->view_valid);
        CHECK(fast->unseen_valid == slow->unseen_valid);
        CHECK(fast->first_unseen.uid == slow->first_unseen.uid);
        CHECK(fast->keywords == slow->keywords);
        return *fast;
    };
    compare(true);
    // A keyword, a flag change, an expunge: each writer leaves the copy.
    auto st = mb->store_flags(std::vector<uint32_t>{2}, FlagOp::Add, Flags{kSeen, {"$Work"}});
    REQUIRE(st.ok());
    CHECK(compare(true).keywords == std::vector<std::string>{"$Work"});
    // A commit that changes `meta` without the copy (an older tern): the
    // copy is stale and `meta` is read.
    REQUIRE(idx->env().write([&](tern::lmdb::Txn& txn) -> tern::Status {
                  uint32_t uidnext = 77;
                  return txn.put(idx->meta, "uidnext",
                                 std::string_view(reinterpret_cast<const char*>(&uidnext), sizeof uidnext));
              }).ok());
    CHECK(compare(false).uidnext == 77);
}

TEST_CASE("mailstore root hint: the folder's attribute names the main database's root after each commit",
          "[mailstore][sync]") {
    SyncRoot t;
    auto mb = t.open();
    fill(*mb, 3);
    auto check = [&] {
        auto hint = load_root_hint(t.path.string());
        if (!hint) {
            // A file system without user attributes: nothing to check.
            WARN("no user.* attributes here");
            return;
        }
        // LMDB's page there is the root of the main database: its header
        // names that page, it is a leaf (the main database is a few
        // records), and it holds the header copy's key.
        std::ifstream in(t.path / "tern-index.lmdb", std::ios::binary);
        std::string page(hint->page_size, '\0');
        in.seekg(static_cast<std::streamoff>(hint->root * hint->page_size));
        REQUIRE(in.read(page.data(), static_cast<std::streamsize>(page.size())));
        uint64_t pgno = 0;
        uint16_t flags = 0;
        std::memcpy(&pgno, page.data(), 8);
        std::memcpy(&flags, page.data() + 10, 2);
        CHECK(pgno == hint->root);
        CHECK((flags & 0x02) != 0);  // P_LEAF
        CHECK(page.find("tern-header") != std::string::npos);
        CHECK(page.find("msgs") != std::string::npos);
    };
    check();
    auto before = load_root_hint(t.path.string());
    fill(*mb, 1);
    check();
    if (before) CHECK_FALSE(load_root_hint(t.path.string()) == before);  // copy-on-write: a new root
}

TEST_CASE("mailstore sync: a session's STORE, EXPUNGE and APPEND do not make the others list cur/",
          "[mailstore][sync]") {
    SyncRoot t;
    auto a = t.open();
    auto b = t.open();
    fill(*a, 10);
    REQUIRE(a->refresh().ok());
    REQUIRE(b->refresh().ok());
    t.age_cur(*a);
    REQUIRE(b->refresh().ok());
    auto idx = t.index();
    uint64_t listings = idx->cur_listings();

    auto stored = a->store_flags(std::vector<uint32_t>{3}, FlagOp::Add, Flags{kSeen | kFlagged, {}});
    REQUIRE(stored.ok());
    REQUIRE(stored->changed == std::vector<uint32_t>{3});
    auto ch = b->refresh();
    REQUIRE(ch.ok());
    CHECK(ch->flag_changes == std::vector<uint32_t>{3});

    REQUIRE(a->store_flags(std::vector<uint32_t>{4}, FlagOp::Add, Flags{kDeleted, {}}).ok());
    REQUIRE(a->expunge().ok());
    ch = b->refresh();
    REQUIRE(ch.ok());
    CHECK(ch->expunged_uids == std::vector<uint32_t>{4});

    fill(*a, 1);
    ch = b->refresh();
    REQUIRE(ch.ok());
    CHECK(ch->new_uids == std::vector<uint32_t>{11});
    CHECK(idx->cur_listings() == listings);
    CHECK(t.files("cur") == 10);
    CHECK(b->status().messages == 10);

    // Another tool's change after them is still found: at once where cur/'s
    // mtime moves, within about a second where the file system's clock
    // gave it the tick of our last change.
    std::string name = cur_name_of(t, "");
    REQUIRE_FALSE(name.empty());
    fs::remove(t.path / "cur" / name);
    CHECK(expunged_within_seconds(*b, 10) == 1);
    CHECK(b->status().messages == 9);
}
