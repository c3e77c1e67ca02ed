// Unit tests for lib/mailstore's Maildir + LMDB implementation: folders,
// append/fetch byte accounting, changes behind the store's back (delivery
// into new/, flag renames, removals), persistence across reopen, CONDSTORE,
// expunge/copy/move, concurrent writers in two processes, change notices,
// the folder header (counts, lazy view, \Recent).
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>

#include "lib/mailstore/folder_index.hpp"
#include "lib/mailstore/maildir_names.hpp"
#include "lib/mailstore/maildir_store.hpp"
#include "lib/maildir/maildir.hpp"

using namespace tern::mailstore;
namespace fs = std::filesystem;

namespace {

struct TempRoot {
    fs::path path;
    TempRoot() {
        char tmpl[] = "/tmp/tern-mailstore-XXXXXX";
        path = ::mkdtemp(tmpl);
        path /= "Maildir";
    }
    ~TempRoot() { fs::remove_all(path.parent_path()); }
};

std::unique_ptr<Store> open_store(const TempRoot& t) {
    MaildirOptions o;
    o.root = t.path.string();
    auto s = open_maildir_store(o);
    REQUIRE(s.ok());
    return std::move(*s);
}

uint32_t append(Mailbox& mb, std::string_view data, Flags flags = {}, int64_t date = 0) {
    auto w = mb.append();
    REQUIRE(w.ok());
    // In two pieces, split inside a CRLF, as a literal arrives from the network.
    size_t half = data.find("\r\n") != std::string_view::npos ? data.find("\r\n") + 1 : data.size() / 2;
    REQUIRE((*w)->write(data.substr(0, half)).ok());
    REQUIRE((*w)->write(data.substr(half)).ok());
    auto uid = (*w)->commit(flags, date);
    REQUIRE(uid.ok());
    return *uid;
}

std::string deliver(const fs::path& maildir, const std::string& body) {
    auto w = tern::maildir::MaildirWriter::create(maildir.string());
    REQUIRE(w.ok());
    REQUIRE(w->write(body).ok());
    auto d = w->commit();
    REQUIRE(d.ok());
    return d->path;
}

std::vector<std::string> files_in(const fs::path& dir) {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

// The store promises a notice within a second; the tests allow more
// because the machine running them may be heavily loaded.
constexpr int kNoticeDeadlineMs = 5000;

bool readable_within(int fd, int ms) {
    struct pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
}

const std::string kMsg =
    "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hello\r\n"
    "Date: Wed, 2 Dec 2026 05:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nHi Bob.\r\nBye.\r\n";

}  // namespace

TEST_CASE("mailstore names: folders and message files", "[mailstore]") {
    CHECK(folder_dir_name("Sent") == ".Sent");
    CHECK(folder_dir_name("Work/2024.Q1") == ".Work.2024%2EQ1");
    CHECK(folder_dir_name("~x/%y") == ".%7Ex.%25y");
    for (std::string n : {"Sent", "Work/2024.Q1", "~x/%y", "caf\xc3\xa9", "a/b/c"})
        CHECK(folder_from_dir_name(folder_dir_name(n)) == std::optional<std::string>(n));
    CHECK_FALSE(folder_from_dir_name("."));
    CHECK_FALSE(folder_from_dir_name(".."));
    CHECK_FALSE(folder_from_dir_name("..a"));
    CHECK_FALSE(folder_from_dir_name(".a."));
    CHECK_FALSE(folder_from_dir_name("cur"));

    auto m = parse_message_name("1700000000.M1P2Q3.host,S=120,W=124:2,FS");
    CHECK(m.base == "1700000000.M1P2Q3.host,S=120,W=124");
    CHECK(m.letters == "FS");
    CHECK(m.size == std::optional<uint64_t>(120));
    CHECK(m.crlf_size == std::optional<uint64_t>(124));
    CHECK(flags_from_letters("DFPRST") == (kDraft | kFlagged | kAnswered | kSeen | kDeleted));
    auto plain = parse_message_name("123.abc");
    CHECK_FALSE(plain.has_info);
    CHECK_FALSE(plain.size);
    CHECK(plain.base == "123.abc");
    // Boundaries: the first ":2," ends the base; the first ",S=" / ",W=" of
    // the base count (a later one does not, nor one without digits); a
    // field after ":2," is not the base's; a name ending in part of ":2,".
    auto odd = parse_message_name("a,W=7,S=,S=5:2,S:2,T,S=9");
    CHECK(odd.base == "a,W=7,S=,S=5");
    CHECK(odd.letters == "S:2,T,S=9");
    CHECK_FALSE(odd.size);
    CHECK(odd.crlf_size == std::optional<uint64_t>(7));
    auto late = parse_message_name("b:2,,S=3,W=4");
    CHECK(late.base == "b");
    CHECK_FALSE(late.size);
    CHECK_FALSE(late.crlf_size);
    for (const char* cut : {"c,S=1:", "c,S=1:2", ",S", ""}) {
        auto c = parse_message_name(cut);
        CHECK(c.base == cut);
        CHECK_FALSE(c.has_info);
    }
    CHECK(parse_message_name("c,S=1:").size == std::optional<uint64_t>(1));
    // A ':' that does not start ":2," (another info version, "::2,"), and
    // a ',' at the base's end.
    auto colons = parse_message_name("e:1,x,S=4::2,F");
    CHECK(colons.base == "e:1,x,S=4:");
    CHECK(colons.letters == "F");
    CHECK(colons.size == std::optional<uint64_t>(4));
    auto v1 = parse_message_name("f,W=3:1,S=2");
    CHECK_FALSE(v1.has_info);
    CHECK(v1.base == "f,W=3:1,S=2");
    CHECK(v1.crlf_size == std::optional<uint64_t>(3));
    CHECK(v1.size == std::optional<uint64_t>(2));
    auto tail = parse_message_name("g,S=5,:2,");
    CHECK(tail.base == "g,S=5,");
    CHECK(tail.size == std::optional<uint64_t>(5));
    CHECK(tail.letters.empty());
    CHECK(tail.has_info);
    CHECK(parse_message_name("d,S=12345678901234567890123,W=2").size == std::optional<uint64_t>(1234567890123456789));
    CHECK(message_file_name("b", kSeen | kAnswered, "Pa") == "b:2,PRSa");
    CHECK(message_file_name("b", 0) == "b:2,");
}

TEST_CASE("mailstore: default folders, hierarchy, subscriptions", "[mailstore]") {
    TempRoot t;
    auto store = open_store(t);
    REQUIRE(store->create_default_folders().ok());
    REQUIRE(store->create_default_folders().ok());  // idempotent
    REQUIRE(store->create_folder("Work/Projects/tern").ok());
    CHECK_FALSE(store->create_folder("Sent").ok());
    CHECK_FALSE(store->create_folder("a//b").ok());
    CHECK_FALSE(store->create_folder("/a").ok());
    CHECK_FALSE(store->create_folder("inbox").ok());
    auto list = store->list_folders();
    REQUIRE(list.ok());
    std::map<std::string, FolderInfo> by;
    for (auto& f : *list) by[f.name] = f;
    REQUIRE(by.count("INBOX"));
    CHECK(by["INBOX"].subscribed);
    CHECK(by["Sent"].special_use == SpecialUse::Sent);
    CHECK(by["Trash"].special_use == SpecialUse::Trash);
    CHECK(by["Junk"].special_use == SpecialUse::Junk);
    CHECK(by["Drafts"].special_use == SpecialUse::Drafts);
    CHECK(by["Archive"].special_use == SpecialUse::Archive);
    CHECK(by["Archive"].subscribed);
    CHECK_FALSE(by["Work"].selectable);  // only a parent
    CHECK(by["Work"].has_children);
    CHECK(by["Work/Projects/tern"].selectable);
    CHECK_FALSE(by["Work/Projects/tern"].has_children);
    CHECK(fs::is_directory(t.path / ".Work.Projects.tern" / "cur"));
    CHECK(store->exists("work/Projects/tern").ok());
    CHECK(*store->exists("inbox"));
    CHECK_FALSE(*store->exists("Nope"));

    REQUIRE(store->rename_folder("Work", "Jobs").ok());
    CHECK(fs::is_directory(t.path / ".Jobs.Projects.tern"));
    CHECK(*store->exists("Jobs/Projects/tern"));
    CHECK_FALSE(store->rename_folder("Jobs/Projects/tern", "Sent").ok());
    REQUIRE(store->rename_folder("Sent", "Sent Items").ok());
    auto after = store->list_folders();
    REQUIRE(after.ok());
    bool sent_moved = false;
    for (auto& f : *after)
        if (f.name == "Sent Items") sent_moved = f.special_use == SpecialUse::Sent;
    CHECK(sent_moved);

    REQUIRE(store->subscribe("Jobs/Projects/tern", true).ok());
    REQUIRE(store->subscribe("Drafts", false).ok());
    auto subs = store->subscriptions();
    REQUIRE(subs.ok());
    std::set<std::string> s(subs->begin(), subs->end());
    CHECK(s.count("Jobs/Projects/tern"));
    CHECK_FALSE(s.count("Drafts"));

    REQUIRE(store->delete_folder("Jobs/Projects/tern").ok());
    CHECK_FALSE(*store->exists("Jobs/Projects/tern"));
    CHECK_FALSE(store->delete_folder("INBOX").ok());
    CHECK_FALSE(store->delete_folder("Nope").ok());
}

TEST_CASE("mailstore: append stores LF, reports exact CRLF size, caches ENVELOPE", "[mailstore]") {
    TempRoot t;
    auto store = open_store(t);
    auto mb = store->open("INBOX");
    REQUIRE(mb.ok());
    Mailbox& inbox = **mb;
    uint32_t uidvalidity = inbox.status().uidvalidity;
    CHECK(uidvalidity != 0);
    Flags f;
    f.system = kSeen;
    f.keywords = {"$Forwarded"};
    uint32_t uid = append(inbox, kMsg, f, 1700000000);
    CHECK(uid == 1);
    CHECK(inbox.view().empty());  // not before refresh
    auto ch = inbox.refresh();
    REQUIRE(ch.ok());
    CHECK(ch->new_uids == std::vector<uint32_t>{1});
    CHECK(ch->exists == 1);
    REQUIRE(inbox.view().size() == 1);
    CHECK(inbox.view()[0].flags == kSeen);
    REQUIRE(inbox.keywords() == std::vector<std::string>{"$Forwarded"});
    CHECK(inbox.view()[0].keywords == 1);

    std::string lf = kMsg;
    for (size_t p; (p = lf.find("\r\n")) != std::string::npos;) lf.replace(p, 2, "\n");
    bool seen = false;
    REQUIRE(inbox.for_each(std::vector<uint32_t>{1}, kFieldSizes | kFieldInternalDate | kFieldEnvelope | kFieldHeaders |
                                                       kFieldBodyStructure,
                           [&](const MessageData& d) {
                               seen = true;
                               CHECK(d.size == lf.size());
                               CHECK(d.crlf_size == kMsg.size());
                               CHECK(d.internal_date == 1700000000);
                               CHECK(d.envelope ==
                                     "(\"Wed, 2 Dec 2026 05:00:00 +0000\" \"hello\" ((\"Alice\" NIL \"alice\" \"example.org\")) "
                                     "((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) "
                                     "((NIL NIL \"bob\" \"example.net\")) NIL NIL NIL \"<1@example.org>\")");
                               CHECK(d.bodystructure ==
                                     "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 15 2 NIL NIL NIL NIL)");
                               CHECK(d.headers.find("Subject: hello\n") != std::string_view::npos);
                               CHECK(d.headers.find("Message-ID: <1@example.org>\n") != std::string_view::npos);
                           })
                .ok());
    CHECK(seen);
    auto body = inbox.open_body(1);
    REQUIRE(body.ok());
    CHECK((*body)->bytes() == lf);
    auto cur = files_in(t.path / "cur");
    REQUIRE(cur.size() == 1);
    CHECK(cur[0].find(",S=" + std::to_string(lf.size()) + ",W=" + std::to_string(kMsg.size()) + ":2,S") != std::string::npos);
    CHECK(files_in(t.path / "tmp").empty());
    CHECK(inbox.unique_id(1).size() == 16);
    CHECK(inbox.seq_of(1) == 1);
    CHECK(inbox.seq_of(2) == 0);
}

TEST_CASE("mailstore: watching starts with notify_fd(), a refresh after it finds earlier changes", "[mailstore]") {
    TempRoot t;
    auto store = open_store(t);
    auto mb = store->open("INBOX");
    REQUIRE(mb.ok());
    Mailbox& inbox = **mb;
    deliver(t.path, "Subject: before\n\nbefore the watch\n");
    REQUIRE(inbox.notify_fd() >= 0);
    auto ch = inbox.refresh();
    REQUIRE(ch.ok());
    CHECK(ch->new_uids == std::vector<uint32_t>{1});
    deliver(t.path, "Subject: after\n\nafter the watch\n");
    CHECK(readable_within(inbox.notify_fd(), kNoticeDeadlineMs));
    ch = inbox.refresh();
    REQUIRE(ch.ok());
    CHECK(ch->new_uids == std::vector<uint32_t>{2});
}

TEST_CASE("mailstore: changes behind the store's back, notices, restart", "[mailstore]") {
    TempRoot t;
    uint32_t uidvalidity = 0;
    {
        auto store = open_store(t);
        auto mb = store->open("INBOX");
        REQUIRE(mb.ok());
        Mailbox& inbox = **mb;
        uidvalidity = inbox.status().uidvalidity;

        // Watching starts with the first notify_fd() (see the next test case).
        REQUIRE(inbox.notify_fd() >= 0);

        // A delivery by local-delivery: noticed within a second, moved to cur/.
        deliver(t.path, "Subject: one\n\nfirst\n");
        CHECK(readable_within(inbox.notify_fd(), kNoticeDeadlineMs));
        auto ch = inbox.refresh();
        REQUIRE(ch.ok());
        CHECK(ch->new_uids == std::vector<uint32_t>{1});
        CHECK(files_in(t.path / "new").empty());
        auto cur = files_in(t.path / "cur");
        REQUIRE(cur.size() == 1);
        CHECK(cur[0].size() > 3);
        CHECK(cur[0].substr(cur[0].size() - 3) == ":2,");
        auto quiet = inbox.refresh();
        REQUIRE(quiet.ok());
        CHECK_FALSE(quiet->any());

        deliver(t.path, "Subject: two\n\nsecond\n");
        deliver(t.path, "Subject: three\n\nthird\n");
        ch = inbox.refresh();
        REQUIRE(ch.ok());
        CHECK(ch->new_uids == std::vector<uint32_t>{2, 3});
        uint64_t modseq_before = inbox.view()[0].modseq;

        // Another tool (mutt) marks message 1 seen and flagged by renaming it.
        cur = files_in(t.path / "cur");
        std::string first;
        for (auto& n : cur) {
            std::ifstream in(t.path / "cur" / n);
            std::string line;
            std::getline(in, line);
            if (line == "Subject: one") first = n;
        }
        REQUIRE_FALSE(first.empty());
        fs::rename(t.path / "cur" / first, t.path / "cur" / (first + "FS"));
        CHECK(readable_within(inbox.notify_fd(), kNoticeDeadlineMs));
        ch = inbox.refresh();
        REQUIRE(ch.ok());
        CHECK(ch->flag_changes == std::vector<uint32_t>{1});
        CHECK(inbox.view()[0].flags == (kSeen | kFlagged));
        CHECK(inbox.view()[0].modseq > modseq_before);

        // Another tool deletes message 2.
        for (auto& n : files_in(t.path / "cur")) {
            std::ifstream in(t.path / "cur" / n);
            std::string line;
            std::getline(in, line);
            if (line == "Subject: two") fs::remove(t.path / "cur" / n);
        }
        ch = inbox.refresh();
        REQUIRE(ch.ok());
        CHECK(ch->expunged_uids == std::vector<uint32_t>{2});
        CHECK(ch->expunged_seqs == std::vector<uint32_t>{2});
        CHECK(ch->exists == 2);
        bool complete = false;
        auto gone = inbox.vanished_since(1, complete);
        REQUIRE(gone.ok());
        CHECK(*gone == std::vector<uint32_t>{2});
        CHECK(complete);

        // A file is parsed once, at the first FETCH that needs its content:
        // rewriting it in place afterwards does not change its cached envelope.
        std::string env;
        REQUIRE(inbox.for_each(std::vector<uint32_t>{3}, kFieldEnvelope, [&](const MessageData& d) { env = d.envelope; }).ok());
        CHECK(env.find("\"three\"") != std::string::npos);
        for (auto& n : files_in(t.path / "cur")) {
            std::ifstream in(t.path / "cur" / n);
            std::string line;
            std::getline(in, line);
            if (line == "Subject: three") {
                in.close();
                std::ofstream out(t.path / "cur" / n, std::ios::trunc);
                out << "Subject: changed\n\nx\n";
            }
        }
        REQUIRE(inbox.refresh().ok());
        env.clear();
        REQUIRE(inbox.for_each(std::vector<uint32_t>{3}, kFieldEnvelope, [&](const MessageData& d) { env = d.envelope; }).ok());
        CHECK(env.find("\"three\"") != std::string::npos);
    }
    // Restart: same UIDVALIDITY, UIDs, flags and modseqs.
    auto store = open_store(t);
    auto mb = store->open("INBOX");
    REQUIRE(mb.ok());
    CHECK((*mb)->status().uidvalidity == uidvalidity);
    REQUIRE((*mb)->view().size() == 2);
    CHECK((*mb)->view()[0].uid == 1);
    CHECK((*mb)->view()[0].flags == (kSeen | kFlagged));
    CHECK((*mb)->view()[1].uid == 3);
    CHECK((*mb)->status().uidnext == 4);

    // Losing the index gives a new UIDVALIDITY (RFC 9051 2.3.1.1), messages kept.
    mb->reset();
    store.reset();
    fs::remove(t.path / "tern-index.lmdb");
    fs::remove(t.path / "tern-index.lmdb-lock");
    store = open_store(t);
    auto again = store->open("INBOX");
    REQUIRE(again.ok());
    CHECK((*again)->view().size() == 2);
    CHECK((*again)->view()[0].flags == (kSeen | kFlagged));  // from the file name
}

TEST_CASE("mailstore: STORE with UNCHANGEDSINCE, two sessions, expunge", "[mailstore]") {
    TempRoot t;
    auto store = open_store(t);
    auto a = store->open("INBOX");
    auto b = store->open("INBOX");
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    for (int i = 0; i < 3; ++i) append(**a, "Subject: m" + std::to_string(i) + "\r\n\r\nbody\r\n");
    REQUIRE((*a)->refresh().ok());
    REQUIRE((*b)->refresh().ok());
    uint64_t ms2 = (*a)->entry(2)->modseq;
    uint64_t ms3 = (*a)->entry(3)->modseq;  // appends each got their own modseq
    CHECK(ms3 > ms2);

    Flags del;
    del.system = kDeleted | kSeen;
    auto r = (*a)->store_flags(std::vector<uint32_t>{1, 2}, FlagOp::Add, del, ms2);
    REQUIRE(r.ok());
    CHECK(r->changed == std::vector<uint32_t>{1, 2});
    CHECK(r->modified.empty());
    uint64_t ms_after = (*a)->entry(2)->modseq;
    CHECK(ms_after > ms2);
    // Own changes are not reported again.
    auto own = (*a)->refresh();
    REQUIRE(own.ok());
    CHECK(own->flag_changes.empty());
    // The other session sees them.
    auto other = (*b)->refresh();
    REQUIRE(other.ok());
    CHECK(other->flag_changes == std::vector<uint32_t>{1, 2});
    CHECK((*b)->entry(1)->flags == (kDeleted | kSeen));
    // A stale UNCHANGEDSINCE is refused per message (RFC 7162 3.1.3).
    Flags flagged;
    flagged.system = kFlagged;
    auto stale = (*b)->store_flags(std::vector<uint32_t>{2, 3}, FlagOp::Add, flagged, ms3);
    REQUIRE(stale.ok());
    CHECK(stale->modified == std::vector<uint32_t>{2});
    CHECK(stale->changed == std::vector<uint32_t>{3});
    // Keywords: added on demand, removed, and the file name keeps system flags.
    Flags kw;
    kw.keywords = {"Work", "$Junk"};
    auto added = (*a)->store_flags(std::vector<uint32_t>{3}, FlagOp::Add, kw);
    REQUIRE(added.ok());
    CHECK(added->keywords_changed);
    CHECK((*a)->keywords().size() == 2);
    auto b_kw = (*b)->refresh();
    REQUIRE(b_kw.ok());
    CHECK(b_kw->keywords_changed);
    CHECK(b_kw->flag_changes == std::vector<uint32_t>{3});
    CHECK((*a)->entry(3)->keywords == 3);
    Flags only_work;
    only_work.keywords = {"work"};
    REQUIRE((*a)->store_flags(std::vector<uint32_t>{3}, FlagOp::Remove, only_work).ok());
    CHECK((*a)->entry(3)->keywords == 2);

    // UID EXPUNGE of 2 only, then EXPUNGE.
    auto e1 = (*a)->expunge(std::vector<uint32_t>{2});
    REQUIRE(e1.ok());
    CHECK(e1->expunged_uids == std::vector<uint32_t>{2});
    CHECK(e1->expunged_seqs == std::vector<uint32_t>{2});
    auto e2 = (*a)->expunge();
    REQUIRE(e2.ok());
    CHECK(e2->expunged_uids == std::vector<uint32_t>{1});
    CHECK((*a)->view().size() == 1);
    CHECK(files_in(t.path / "cur").size() == 1);
    auto seen_by_b = (*b)->refresh();
    REQUIRE(seen_by_b.ok());
    CHECK(seen_by_b->expunged_uids == std::vector<uint32_t>{1, 2});
    CHECK(seen_by_b->expunged_seqs == std::vector<uint32_t>{1, 2});

    auto ro = store->open("INBOX", true);
    REQUIRE(ro.ok());
    CHECK_FALSE((*ro)->store_flags(std::vector<uint32_t>{3}, FlagOp::Add, flagged).ok());
    CHECK_FALSE((*ro)->expunge().ok());
}

TEST_CASE("mailstore: COPY and MOVE keep flags, keywords, dates, cache", "[mailstore]") {
    TempRoot t;
    auto store = open_store(t);
    REQUIRE(store->create_default_folders().ok());
    auto mb = store->open("INBOX");
    REQUIRE(mb.ok());
    Flags f;
    f.system = kFlagged;
    f.keywords = {"$Label1"};
    append(**mb, kMsg, f, 1600000000);
    append(**mb, "Subject: two\r\n\r\nx\r\n");
    REQUIRE((*mb)->refresh().ok());
    auto c = (*mb)->copy(std::vector<uint32_t>{1, 2}, "Archive");
    REQUIRE(c.ok());
    CHECK(c->source_uids == std::vector<uint32_t>{1, 2});
    CHECK(c->dest_uids == std::vector<uint32_t>{1, 2});
    CHECK(c->dest_uidvalidity == store->status("Archive")->uidvalidity);
    CHECK_FALSE((*mb)->copy(std::vector<uint32_t>{1}, "Nope").ok());

    auto archive = store->open("Archive");
    REQUIRE(archive.ok());
    REQUIRE((*archive)->view().size() == 2);
    CHECK((*archive)->view()[0].flags == kFlagged);
    CHECK((*archive)->keywords() == std::vector<std::string>{"$Label1"});
    REQUIRE((*archive)->for_each(std::vector<uint32_t>{1}, kFieldSizes | kFieldInternalDate | kFieldEnvelope,
                                 [&](const MessageData& d) {
                                     CHECK(d.crlf_size == kMsg.size());
                                     CHECK(d.internal_date == 1600000000);
                                     CHECK(d.envelope.find("\"hello\"") != std::string_view::npos);
                                 })
                .ok());

    Changes gone;
    auto m = (*mb)->move(std::vector<uint32_t>{2}, "Trash", gone);
    REQUIRE(m.ok());
    CHECK(m->dest_uids == std::vector<uint32_t>{1});
    CHECK(gone.expunged_uids == std::vector<uint32_t>{2});
    CHECK((*mb)->view().size() == 1);
    CHECK(store->status("Trash")->messages == 1);
    CHECK(store->status("INBOX")->messages == 1);
    auto usage = store->quota_usage();
    REQUIRE(usage.ok());
    CHECK(usage->messages == 4);  // INBOX 1, Archive 2, Trash 1

    // RENAME INBOX moves its messages into the new folder.
    REQUIRE(store->rename_folder("INBOX", "Old").ok());
    CHECK(store->status("Old")->messages == 1);
    CHECK(store->status("INBOX")->messages == 0);
}

TEST_CASE("mailstore: two processes append concurrently, UIDs never repeat", "[mailstore]") {
    TempRoot t;
    {
        auto store = open_store(t);
        REQUIRE(store->open("INBOX").ok());
    }
    constexpr int kEach = 40;
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        MaildirOptions o;
        o.root = t.path.string();
        auto s = open_maildir_store(o);
        if (!s) ::_exit(2);
        auto mb = (*s)->open("INBOX");
        if (!mb) ::_exit(3);
        for (int i = 0; i < kEach; ++i) {
            auto w = (*mb)->append();
            if (!w || !(*w)->write("Subject: child\r\n\r\nx\r\n").ok() || !(*w)->commit({}).ok()) ::_exit(4);
            // Deliveries behind the back interleave with the appends.
            if (i % 10 == 0) {
                auto d = tern::maildir::MaildirWriter::create(o.root);
                if (!d || !d->write("Subject: d\n\nx\n").ok() || !d->commit().ok()) ::_exit(5);
            }
        }
        ::_exit(0);
    }
    auto store = open_store(t);
    auto mb = store->open("INBOX");
    REQUIRE(mb.ok());
    std::set<uint32_t> mine;
    for (int i = 0; i < kEach; ++i) {
        mine.insert(append(**mb, "Subject: parent\r\n\r\nx\r\n"));
        if (i % 7 == 0) REQUIRE((*mb)->refresh().ok());
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(mine.size() == kEach);
    REQUIRE((*mb)->refresh().ok());
    constexpr size_t kTotal = 2 * kEach + kEach / 10;  // appends of both + the child's deliveries
    CHECK((*mb)->view().size() == kTotal);
    std::set<uint32_t> all;
    for (const auto& e : (*mb)->view()) all.insert(e.uid);
    CHECK(all.size() == kTotal);
    CHECK(*all.rbegin() == kTotal);  // no UID skipped or used twice
    CHECK(files_in(t.path / "cur").size() == kTotal);
    CHECK(files_in(t.path / "new").empty());
    CHECK(files_in(t.path / "tmp").empty());
}

TEST_CASE("mailstore: a foreign Maildir is indexed from names, read at first FETCH", "[mailstore]") {
    TempRoot t;
    REQUIRE(tern::maildir::ensure_maildir(t.path.string()).ok());
    std::string a = "Subject: alpha\n\nA\n", b = "Subject: beta\n\nB\nB\n";
    std::string name_a = "1600000000.M1P1.other,S=" + std::to_string(a.size()) + ",W=" + std::to_string(a.size() + 3) + ":2,S";
    std::string name_b = "1600000001.M2P1.other:2,";  // no sizes in the name: read at once
    std::ofstream(t.path / "cur" / name_a) << a;
    std::ofstream(t.path / "cur" / name_b) << b;
    // Bigger than what is read whole: mapped.
    std::string big = "Subject: big\n\n";
    while (big.size() < (size_t{3} << 19)) big += std::string(99, 'c') + "\n";
    size_t big_lines = static_cast<size_t>(std::count(big.begin(), big.end(), '\n'));
    std::ofstream(t.path / "cur" / "1600000002.M3P1.other:2,") << big;
    fs::last_write_time(t.path / "cur" / name_a, fs::file_time_type::clock::now() - std::chrono::hours(24));
    auto store = open_store(t);
    auto mb = store->open("INBOX");
    REQUIRE(mb.ok());
    REQUIRE((*mb)->view().size() == 3);
    CHECK((*mb)->view()[0].flags == kSeen);
    CHECK((*mb)->status().size == a.size() + 3 + b.size() + 4 + big.size() + big_lines);  // one more byte per LF
    // Not read yet: a change of the content before the first FETCH shows.
    std::string a2 = "Subject: gamma\n\nA\n";
    std::ofstream(t.path / "cur" / name_a, std::ios::trunc) << a2;
    fs::last_write_time(t.path / "cur" / name_a, fs::file_time_type::clock::now() - std::chrono::hours(24));
    std::map<uint32_t, std::string> env;
    std::map<uint32_t, int64_t> date;
    REQUIRE((*mb)->for_each(std::vector<uint32_t>{1, 2, 3}, kFieldEnvelope | kFieldInternalDate | kFieldSizes,
                            [&](const MessageData& d) {
                                env[d.uid] = std::string(d.envelope);
                                date[d.uid] = d.internal_date;
                            })
                .ok());
    CHECK(env[1].find("\"gamma\"") != std::string::npos);
    CHECK(env[2].find("\"beta\"") != std::string::npos);
    CHECK(env[3].find("\"big\"") != std::string::npos);
    CHECK(date[1] < ::time(nullptr) - 80000);  // the file's mtime
    CHECK(date[2] > ::time(nullptr) - 3600);
    // Copies of a message not read yet are read at their own first need.
    REQUIRE(store->create_folder("Other").ok());
    auto c = (*mb)->copy(std::vector<uint32_t>{1}, "Other");
    REQUIRE(c.ok());
    auto other = store->open("Other");
    REQUIRE(other.ok());
    std::string copied;
    REQUIRE((*other)->for_each(std::vector<uint32_t>{1}, kFieldEnvelope, [&](const MessageData& d) { copied = d.envelope; }).ok());
    CHECK(copied == env[1]);
}

TEST_CASE("mailstore: a first FETCH of many files not read yet gives each message its own envelope", "[mailstore]") {
    // Enough files for fill() to read them on two threads.
    TempRoot t;
    REQUIRE(tern::maildir::ensure_maildir(t.path.string()).ok());
    constexpr int n = 300;
    for (int i = 0; i < n; ++i) {
        std::string body = "Subject: m" + std::to_string(i) + "\n\n" + std::string(static_cast<size_t>(i), 'x') + "\n";
        std::string name = std::to_string(1600000000 + i) + ".M1P1.other,S=" + std::to_string(body.size()) +
                           ",W=" + std::to_string(body.size() + 3) + ":2,S";
        std::ofstream(t.path / "cur" / name) << body;
    }
    auto store = open_store(t);
    auto mb = store->open("INBOX");
    REQUIRE(mb.ok());
    REQUIRE((*mb)->view().size() == n);
    std::vector<uint32_t> uids;
    for (uint32_t uid = 1; uid <= n; ++uid) uids.push_back(uid);
    std::map<uint32_t, std::string> env;
    REQUIRE((*mb)->for_each(uids, kFieldEnvelope, [&](const MessageData& d) { env[d.uid] = std::string(d.envelope); }).ok());
    REQUIRE(env.size() == n);
    for (uint32_t uid = 1; uid <= n; ++uid)
        REQUIRE(env[uid].find("\"m" + std::to_string(uid - 1) + "\"") != std::string::npos);
}

TEST_CASE("mailstore: unknown files get UIDs in arrival order", "[mailstore]") {
    TempRoot t;
    REQUIRE(tern::maildir::ensure_maildir(t.path.string()).ok());
    // Plain string order would put M100000 before M99999 and 10 before 9;
    // leading zeros do not count, a number too long for 64 bits still
    // compares as a number, and digits come before letters.
    const char* names[] = {"abc.h", "1700000001.M5P9Q1.h", "99999999999999999999999.h", "1700000000.M100000P9Q1.h",
                           "1700000000.M99999P9Q10.h", "0001700000000.M1P1.h", "1700000000.M99999P9Q9.h"};
    for (const char* n : names) std::ofstream(t.path / "new" / n) << "Subject: N:" << n << "\n\nx\n";
    auto store = open_store(t);
    auto mb = store->open("INBOX");
    REQUIRE(mb.ok());
    std::vector<std::string> order;
    std::vector<uint32_t> uids = {1, 2, 3, 4, 5, 6, 7};
    REQUIRE((*mb)->for_each(uids, kFieldEnvelope, [&](const MessageData& d) {
                   auto s = std::string(d.envelope);
                   auto q = s.find("N:");
                   order.push_back(s.substr(q + 2, s.find('"', q) - q - 2));
               })
                .ok());
    CHECK(order == std::vector<std::string>{"0001700000000.M1P1.h", "1700000000.M99999P9Q9.h",
                                            "1700000000.M99999P9Q10.h", "1700000000.M100000P9Q1.h",
                                            "1700000001.M5P9Q1.h", "99999999999999999999999.h", "abc.h"});

    // The usual case, every name led by a number that fits 64 bits: the
    // same order (numbers first, equal ones by the rest of the name).
    REQUIRE(store->create_folder("Numbered").ok());
    const char* numbered[] = {"1700000001.M5P9Q1.h", "1700000000.M100000P9Q1.h", "1700000000.M99999P9Q10.h",
                              "9.x", "0001700000000.M1P1.h", "1700000000.M99999P9Q9.h", "10.x"};
    for (const char* n : numbered) std::ofstream(t.path / ".Numbered" / "new" / n) << "Subject: N:" << n << "\n\nx\n";
    auto box = store->open("Numbered");
    REQUIRE(box.ok());
    order.clear();
    REQUIRE((*box)->for_each(uids, kFieldEnvelope, [&](const MessageData& d) {
                   auto s = std::string(d.envelope);
                   auto q = s.find("N:");
                   order.push_back(s.substr(q + 2, s.find('"', q) - q - 2));
               })
                .ok());
    CHECK(order == std::vector<std::string>{"9.x", "10.x", "0001700000000.M1P1.h", "1700000000.M99999P9Q9.h",
                                            "1700000000.M99999P9Q10.h", "1700000000.M100000P9Q1.h",
                                            "1700000001.M5P9Q1.h"});
}

TEST_CASE("mailstore: a first open of more files than one batch keeps arrival order and finds each name again",
          "[mailstore]") {
    TempRoot t;
    REQUIRE(tern::maildir::ensure_maildir(t.path.string()).ok());
    // More than one batch of files known from their names (25,000 a
    // transaction).  The arrival second grows from 9 to 5 digits, so that
    // the names' string order is not arrival order (9 < 10 as numbers,
    // "10" < "9" as strings).  Two more files share a base with other
    // flags: the earlier in arrival order ("...:2," before "...:2,S") is
    // indexed, the other not.
    constexpr int n = 25010;
    auto base = [](int i) { return std::to_string(9 + i) + ".M" + std::to_string(i) + "P1.host,S=2,W=3"; };
    for (int i = 0; i < n; ++i) std::ofstream(t.path / "cur" / (base(i) + ":2," + (i % 2 ? "S" : ""))) << "x\n";
    std::ofstream(t.path / "cur" / (base(n) + ":2,S")) << "x\n";
    std::ofstream(t.path / "cur" / (base(n) + ":2,")) << "x\n";
    auto store = open_store(t);
    {
        auto mb = store->open("INBOX");
        REQUIRE(mb.ok());
        const auto& view = (*mb)->view();
        REQUIRE(view.size() == n + 1);
        for (int i = 0; i < n; ++i) {
            REQUIRE(view[static_cast<size_t>(i)].uid == static_cast<uint32_t>(i + 1));
            REQUIRE(view[static_cast<size_t>(i)].flags == (i % 2 ? kSeen : 0));
        }
        CHECK(view[n].flags == 0);
    }
    // Another tool flags a message of each batch and removes one: their
    // names lead to the same UIDs.
    for (int i : {0, 24998, 25004}) fs::rename(t.path / "cur" / (base(i) + ":2,"), t.path / "cur" / (base(i) + ":2,F"));
    fs::remove(t.path / "cur" / (base(25001) + ":2,S"));
    auto mb = store->open("INBOX");
    REQUIRE(mb.ok());
    const auto& view = (*mb)->view();
    REQUIRE(view.size() == n);
    std::map<uint32_t, uint8_t> flags;
    for (const auto& e : view) flags[e.uid] = e.flags;
    CHECK(flags[1] == kFlagged);
    CHECK(flags[24999] == kFlagged);
    CHECK(flags[25005] == kFlagged);
    CHECK(flags[25003] == 0);
    CHECK(flags.count(25002) == 0);
    CHECK(flags.count(n + 1) == 1);
    CHECK(view.back().uid == n + 1);
}

TEST_CASE("mailstore: a first open of a folder of new files commits the databases' creation and the records only",
          "[mailstore]") {
    // Each commit is an fsync: the first SELECT of a folder does not commit
    // the empty header of pass 1 before the records.
    TempRoot t;
    REQUIRE(tern::maildir::ensure_maildir(t.path.string()).ok());
    for (int i = 0; i < 3; ++i) std::ofstream(t.path / "cur" / (std::to_string(100 + i) + ".M1P1.h,S=2,W=3:2,")) << "x\n";
    auto store = open_store(t);
    auto mb = store->open("INBOX");
    REQUIRE(mb.ok());
    CHECK((*mb)->view().size() == 3);
    CHECK((*mb)->status().uidvalidity != 0);
    CHECK((*mb)->status().uidnext == 4);
    auto idx = FolderIndex::open(t.path.string(), (t.path / "tern-index.lmdb").string());
    REQUIRE(idx.ok());
    MDB_envinfo info{};
    REQUIRE(mdb_env_info((*idx)->env().get(), &info) == 0);
    CHECK(info.me_last_txnid == 2);  // the databases created, then the records
    // The next open finds everything known and the same UIDs.
    auto again = open_store(t)->open("INBOX");
    REQUIRE(again.ok());
    CHECK((*again)->status().uidvalidity == (*mb)->status().uidvalidity);
    CHECK((*again)->view().back().uid == 3);
}

TEST_CASE("mailstore: the quota refuses APPEND and COPY that do not fit, not MOVE", "[mailstore]") {
    TempRoot t;
    MaildirOptions o;
    o.root = t.path.string();
    o.quota_bytes = 1000;
    auto store = open_maildir_store(o);
    REQUIRE(store.ok());
    REQUIRE((*store)->create_default_folders().ok());
    auto inbox = (*store)->open("INBOX");
    REQUIRE(inbox.ok());
    std::string msg = "Subject: q\r\n\r\n" + std::string(388, 'x');  // 400 bytes stored (LF)
    uint32_t first = append(**inbox, msg);
    append(**inbox, msg);
    auto usage = (*store)->quota_usage();
    REQUIRE(usage.ok());
    CHECK(usage->bytes == 800);
    CHECK(usage->messages == 2);
    CHECK(usage->limit_bytes == 1000);

    // A third one would make 1200 bytes: refused, nothing left behind.
    auto w = (*inbox)->append();
    REQUIRE(w.ok());
    REQUIRE((*w)->write(msg).ok());
    auto refused = (*w)->commit({});
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.message().find(kOverQuota) != std::string::npos);
    w->reset();
    CHECK(fs::is_empty(t.path / "tmp"));

    REQUIRE((*inbox)->refresh().ok());
    REQUIRE((*inbox)->view().size() == 2);
    uint32_t uids[] = {first};
    auto copied = (*inbox)->copy(uids, "Archive");
    REQUIRE_FALSE(copied.ok());
    CHECK(copied.message().find(kOverQuota) != std::string::npos);
    CHECK((*store)->status("Archive")->messages == 0);

    Changes gone;
    auto moved = (*inbox)->move(uids, "Archive", gone);
    REQUIRE(moved.ok());
    CHECK((*store)->status("Archive")->messages == 1);
    usage = (*store)->quota_usage();
    REQUIRE(usage.ok());
    CHECK(usage->bytes == 800);

    // An expunge gives the space back: the append fits again.
    uint32_t second = (*inbox)->view()[0].uid;
    uint32_t del[] = {second};
    REQUIRE((*inbox)->store_flags(del, FlagOp::Add, Flags{kDeleted, {}}).ok());
    REQUIRE((*inbox)->expunge().ok());
    CHECK((*store)->quota_usage()->bytes == 400);
    append(**inbox, msg);
    CHECK((*store)->quota_usage()->bytes == 800);
}

// The folder header: the counts every writer keeps (SELECT and STATUS read
// them instead of the records), the view read at its first use as the
// session was told at open, an index without counts (older tern), and
// \Recent claimed by exactly one session (RFC 3501 2.3.2).
namespace {

std::unique_ptr<Mailbox> open_box(Store& store, bool read_only = false) {
    auto mb = store.open("INBOX", read_only);
    REQUIRE(mb.ok());
    return std::move(*mb);
}

// A message with this subject (and flags) appended through the store.
uint32_t append_subject(Mailbox& mb, const std::string& subject, uint8_t flags = 0) {
    Flags f;
    f.system = flags;
    return append(mb, "Subject: " + subject + "\r\n\r\nbody of " + subject + "\r\n", f);
}

// A store whose INBOX holds "one" (unseen) and "two" (\Seen).
std::unique_ptr<Store> store_with_two_messages(const TempRoot& t) {
    auto store = open_store(t);
    auto a = open_box(*store);
    append_subject(*a, "one");
    append_subject(*a, "two", kSeen);
    return store;
}

// INBOX's header as a reader finds it now.
IndexMeta inbox_meta(const TempRoot& t) {
    auto idx = FolderIndex::open(t.path.string(), (t.path / "tern-index.lmdb").string());
    REQUIRE(idx.ok());
    auto txn = (*idx)->env().begin_read();
    REQUIRE(txn.ok());
    auto m = (*idx)->read_meta(*txn);
    REQUIRE(m.ok());
    return *m;
}

// Changes INBOX's index directly, as an older tern (or a damaged disk) would.
void change_inbox_index(const TempRoot& t, const std::function<tern::Status(FolderIndex&, tern::lmdb::Txn&)>& fn) {
    auto idx = FolderIndex::open(t.path.string(), (t.path / "tern-index.lmdb").string());
    REQUIRE(idx.ok());
    REQUIRE((*idx)->env().write([&](tern::lmdb::Txn& txn) { return fn(**idx, txn); }).ok());
}

// The packed view (view_chunks.hpp) holds exactly what the records say.
void check_packed_view_matches_records(const fs::path& folder) {
    auto idx = FolderIndex::open(folder.string(), (folder / "tern-index.lmdb").string());
    REQUIRE(idx.ok());
    auto txn = (*idx)->env().begin_read();
    REQUIRE(txn.ok());
    auto m = (*idx)->read_meta(*txn);
    REQUIRE(m.ok());
    CHECK(m->view_valid);
    std::vector<PackedEntry> from_records, packed;
    auto cur = txn->cursor((*idx)->msgs);
    REQUIRE(cur.ok());
    for (auto e = cur->first(); e && *e; e = cur->next()) {
        auto rec = decode_record((*e)->value);
        REQUIRE(rec);
        from_records.push_back(packed_entry(key_uid((*e)->key), *rec));
    }
    REQUIRE(for_each_packed(*txn, (*idx)->view, Prefetch::All, [&](const PackedEntry& e) {
        packed.push_back(e);
        return true;
    }).ok());
    CHECK(packed == from_records);
}

// The status a Mailbox gives from the folder's counts, and the one it
// gives once its view is loaded (computed from the records).
void check_counts_match_records(Store& store) {
    auto box = open_box(store, true);
    MailboxStatus from_counts = box->status();
    (void)box->view();
    MailboxStatus from_view = box->status();
    CHECK(from_counts.messages == from_view.messages);
    CHECK(from_counts.unseen == from_view.unseen);
    CHECK(from_counts.deleted == from_view.deleted);
    CHECK(from_counts.size == from_view.size);
    CHECK(from_counts.recent == from_view.recent);
}

}  // namespace

TEST_CASE("mailstore header: every writer keeps the counts and the packed view", "[mailstore]") {
    TempRoot t;
    auto store = open_store(t);
    auto check_counts_match_records = [&](Store& s) {
        ::check_counts_match_records(s);
        check_packed_view_matches_records(t.path);
    };
    auto a = open_box(*store);
    append_subject(*a, "one");
    append_subject(*a, "two", kSeen);
    append_subject(*a, "three", kSeen | kFlagged);
    check_counts_match_records(*store);
    {
        auto st = open_box(*store, true)->status();
        CHECK(st.messages == 3);
        CHECK(st.unseen == 1);
    }
    REQUIRE(a->refresh().ok());
    Flags del;
    del.system = kDeleted;
    REQUIRE(a->store_flags(std::vector<uint32_t>{1, 2}, FlagOp::Add, del).ok());
    check_counts_match_records(*store);
    CHECK(open_box(*store, true)->status().deleted == 2);
    REQUIRE(a->expunge(std::vector<uint32_t>{1}).ok());
    check_counts_match_records(*store);
    // Behind the store's back: a delivery into new/, a flag rename, a removal.
    deliver(t.path, "Subject: four\n\nhello\n");
    check_counts_match_records(*store);
    for (auto& e : fs::directory_iterator(t.path / "cur")) {
        std::string n = e.path().filename().string();
        size_t info = n.find(":2,");
        if (info != std::string::npos && n.substr(info + 3) == "FS") {
            fs::rename(e.path(), t.path / "cur" / (n.substr(0, info) + ":2,F"));  // \Seen taken away
            break;
        }
    }
    check_counts_match_records(*store);
    CHECK(open_box(*store, true)->status().unseen == 2);
    for (auto& e : fs::directory_iterator(t.path / "cur")) {
        if (e.path().filename().string().find(":2,ST") != std::string::npos) {
            fs::remove(e.path());
            break;
        }
    }
    check_counts_match_records(*store);
    // The first FETCH of the delivered file reads it (sizes from the file).
    auto b = open_box(*store);
    std::vector<uint32_t> all;
    for (const auto& e : b->view()) all.push_back(e.uid);
    REQUIRE(b->for_each(all, kFieldEnvelope, [](const MessageData&) {}).ok());
    check_counts_match_records(*store);
    CHECK(open_box(*store, true)->status().messages == 2);
}

TEST_CASE("mailstore header: the view is read at first use, as the session was told", "[mailstore]") {
    TempRoot t;
    auto store = open_store(t);
    auto writer = open_box(*store);
    for (int i = 1; i <= 4; ++i) append_subject(*writer, "m" + std::to_string(i));
    REQUIRE(writer->refresh().ok());

    auto lazy = open_box(*store);
    CHECK(lazy->status().messages == 4);
    // Before `lazy` looks at its view: 2 is expunged, 3 gets a flag, 5 arrives.
    Flags del;
    del.system = kDeleted;
    REQUIRE(writer->store_flags(std::vector<uint32_t>{2}, FlagOp::Add, del).ok());
    REQUIRE(writer->expunge().ok());
    Flags flagged;
    flagged.system = kFlagged;
    REQUIRE(writer->store_flags(std::vector<uint32_t>{3}, FlagOp::Add, flagged).ok());
    CHECK(append_subject(*writer, "m5") == 5);

    // The view is the one told at open: 4 messages, sequence numbers unchanged.
    auto v = lazy->view();
    REQUIRE(v.size() == 4);
    CHECK(v[1].uid == 2);
    CHECK(lazy->seq_of(4) == 4);
    CHECK(lazy->seq_of(5) == 0);
    // The next refresh reports all three changes.
    auto ch = lazy->refresh();
    REQUIRE(ch.ok());
    CHECK(ch->expunged_uids == std::vector<uint32_t>{2});
    CHECK(ch->expunged_seqs == std::vector<uint32_t>{2});
    CHECK(ch->new_uids == std::vector<uint32_t>{5});
    CHECK(ch->flag_changes == std::vector<uint32_t>{3});
    CHECK(ch->exists == 4);
    CHECK(lazy->entry(3)->flags == kFlagged);

    // Nothing changed since open: a refresh reads no records and reports nothing.
    auto quiet = open_box(*store);
    auto none = quiet->refresh();
    REQUIRE(none.ok());
    CHECK_FALSE(none->any());
    CHECK(none->exists == 4);
}

TEST_CASE("mailstore header: an index without counts is counted once at open", "[mailstore]") {
    TempRoot t;
    auto store = store_with_two_messages(t);
    {
        // What an index written before the counts existed looks like.
        change_inbox_index(t, [](FolderIndex& idx, tern::lmdb::Txn& txn) -> tern::Status {
            auto r = txn.del(idx.meta, "counts");
            if (!r) return r.error();
            return {};
        });
        CHECK_FALSE(inbox_meta(t).counts_valid);
    }
    auto st = open_box(*store, true)->status();
    CHECK(st.messages == 2);
    CHECK(st.unseen == 1);
    check_counts_match_records(*store);
    auto m = inbox_meta(t);
    CHECK(m.counts_valid);  // stored by the open that counted
    CHECK(m.counts.messages == 2);
}

TEST_CASE("mailstore header: \\Recent is claimed by exactly one session", "[mailstore]") {
    TempRoot t;
    auto store = open_store(t);
    {
        auto w = open_box(*store);
        append_subject(*w, "one");
        append_subject(*w, "two");
    }
    CHECK(store->status("INBOX")->recent == 2);
    auto a = open_box(*store);
    REQUIRE(a->claim_recent().ok());
    CHECK(a->recent_count() == 2);
    CHECK(a->is_recent(1));
    CHECK(a->is_recent(2));
    auto b = open_box(*store);
    REQUIRE(b->claim_recent().ok());
    CHECK(b->recent_count() == 0);
    CHECK_FALSE(b->is_recent(1));
    CHECK(store->status("INBOX")->recent == 0);

    // A delivery: the first session to refresh claims it.
    deliver(t.path, "Subject: three\n\nhello\n");
    auto ca = a->refresh();
    REQUIRE(ca.ok());
    CHECK(ca->new_uids == std::vector<uint32_t>{3});
    CHECK(a->is_recent(3));
    CHECK(a->recent_count() == 3);
    auto cb = b->refresh();
    REQUIRE(cb.ok());
    CHECK(cb->new_uids == std::vector<uint32_t>{3});
    CHECK_FALSE(b->is_recent(3));
    CHECK(b->recent_count() == 0);

    // EXAMINE (read-only) and STATUS see unclaimed ones and take nothing.
    deliver(t.path, "Subject: four\n\nhello\n");
    auto ro = open_box(*store, true);
    REQUIRE(ro->claim_recent().ok());
    CHECK(ro->recent_count() == 1);
    CHECK(ro->is_recent(4));
    CHECK_FALSE(ro->is_recent(3));
    CHECK(store->status("INBOX")->recent == 1);

    // The mark survives closing every session and reopening the store.
    a.reset();
    b.reset();
    ro.reset();
    auto again = open_store(t);
    auto c = open_box(*again);
    REQUIRE(c->claim_recent().ok());
    CHECK(c->recent_count() == 1);
    CHECK(c->is_recent(4));
    CHECK_FALSE(c->is_recent(3));
    check_counts_match_records(*again);
}

TEST_CASE("mailstore: an index kept open is not reused once another process renamed its folder", "[mailstore]") {
    TempRoot t;
    auto store = open_store(t);
    REQUIRE(store->create_folder("A").ok());
    {
        auto a = store->open("A");
        REQUIRE(a.ok());
        append(**a, "Subject: in A\r\n\r\nx\r\n");
    }  // A's index stays open in this process (FolderIndex keeps recent ones)
    // Another process renames A to B and creates a new A: the path now names another file.
    fs::rename(t.path / ".A", t.path / ".B");
    REQUIRE(store->create_folder("A").ok());
    auto fresh = store->open("A");
    REQUIRE(fresh.ok());
    CHECK((*fresh)->status().messages == 0);
    auto moved = store->open("B");
    REQUIRE(moved.ok());
    CHECK((*moved)->status().messages == 1);
    // Deleted and made again behind our back: the same.
    fresh->reset();
    fs::remove_all(t.path / ".A");
    REQUIRE(store->create_folder("A").ok());
    auto again = store->open("A");
    REQUIRE(again.ok());
    CHECK((*again)->status().messages == 0);
    append(**again, "Subject: new A\r\n\r\nx\r\n");
    REQUIRE((*again)->refresh().ok());
    CHECK((*again)->view().size() == 1);
}

// The packed view (view_chunks.hpp): chunks of kUidsPerChunk UIDs that a
// view load reads instead of the records.
TEST_CASE("mailstore packed view: spans chunks, follows flag changes and expunges, finds the first unseen",
          "[mailstore]") {
    TempRoot t;
    REQUIRE(tern::maildir::ensure_maildir(t.path.string()).ok());
    const int n = static_cast<int>(kUidsPerChunk) * 2 + 100;
    std::string body = "Subject: x\n\nx\n";
    for (int i = 0; i < n; ++i) {
        std::string name = std::to_string(1600000000 + i) + ".M" + std::to_string(i) + "P1.other,S=" +
                           std::to_string(body.size()) + ",W=" + std::to_string(body.size() + 3) + ":2,S";
        std::ofstream(t.path / "cur" / name) << body;
    }
    auto store = open_store(t);
    auto mb = open_box(*store);
    REQUIRE(mb->view().size() == static_cast<size_t>(n));
    check_packed_view_matches_records(t.path);
    CHECK(mb->first_unseen().ok());
    CHECK(*mb->first_unseen() == 0);  // all seen

    // \Seen taken from one message in the last chunk: the first unseen is found there.
    uint32_t last = mb->view().back().uid;
    REQUIRE(mb->store_flags(std::vector<uint32_t>{last}, FlagOp::Remove, Flags{kSeen, {}}).ok());
    check_packed_view_matches_records(t.path);
    {
        auto fresh = open_box(*store, true);
        auto seq = fresh->first_unseen();
        REQUIRE(seq.ok());
        CHECK(*seq == static_cast<uint32_t>(n));
    }
    // Every UID of the second chunk expunged: the chunk goes, the others stay.
    std::vector<uint32_t> second;
    for (uint32_t uid = kUidsPerChunk; uid < 2 * kUidsPerChunk; ++uid) second.push_back(uid);
    REQUIRE(mb->store_flags(second, FlagOp::Add, Flags{kDeleted, {}}).ok());
    REQUIRE(mb->expunge().ok());
    check_packed_view_matches_records(t.path);
    auto fresh = open_box(*store, true);
    CHECK(fresh->view().size() == static_cast<size_t>(n) - second.size());
    CHECK(fresh->seq_of(kUidsPerChunk - 1) == kUidsPerChunk - 1);
    CHECK(fresh->seq_of(kUidsPerChunk) == 0);
    CHECK(fresh->seq_of(2 * kUidsPerChunk) == kUidsPerChunk);
    auto seq = fresh->first_unseen();
    REQUIRE(seq.ok());
    CHECK(*seq == fresh->seq_of(last));
}

TEST_CASE("mailstore packed view: an index of the earlier layout (no view) gets it at its first open", "[mailstore]") {
    TempRoot t;
    std::vector<ViewEntry> before;
    {
        auto store = open_store(t);
        auto a = open_box(*store);
        append_subject(*a, "one");
        append_subject(*a, "two", kSeen);
        append_subject(*a, "three", kSeen | kFlagged);
        REQUIRE(a->store_flags(std::vector<uint32_t>{2}, FlagOp::Add, Flags{0, {"$Work"}}).ok());
        REQUIRE(a->refresh().ok());
        auto v = a->view();
        before.assign(v.begin(), v.end());
        // Sixteen other folders opened after it: INBOX's index is no longer kept open.
        for (int i = 0; i < 17; ++i) {
            std::string name = "F" + std::to_string(i);
            REQUIRE(store->create_folder(name).ok());
            REQUIRE(store->open(name).ok());
        }
    }
    {
        // What the earlier layout looks like: no "view" database, no stamp.
        tern::lmdb::Env::Options opt;
        opt.flags = MDB_NOSUBDIR;
        auto env = tern::lmdb::Env::open((t.path / "tern-index.lmdb").string(), opt);
        REQUIRE(env.ok());
        REQUIRE((*env)->write([&](tern::lmdb::Txn& txn) -> tern::Status {
            auto view = txn.open_dbi("view", 0);
            if (!view) return view.error();
            if (int rc = mdb_drop(txn.get(), view->handle, 1); rc != 0) return tern::lmdb::mdb_error("mdb_drop", rc);
            auto r = txn.del(*txn.open_dbi("meta", 0), "view_stamp");
            if (!r) return r.error();
            return {};
        }).ok());
        auto txn = (*env)->begin_read();
        REQUIRE(txn.ok());
        CHECK_FALSE(txn->open_dbi("view", 0).ok());
    }
    auto store = open_store(t);
    auto b = open_box(*store);
    CHECK(b->status().messages == 3);
    auto v = b->view();
    REQUIRE(v.size() == before.size());
    for (size_t i = 0; i < v.size(); ++i) {
        CHECK(v[i].uid == before[i].uid);
        CHECK(v[i].flags == before[i].flags);
        CHECK(v[i].keywords == before[i].keywords);
        CHECK(v[i].modseq == before[i].modseq);
    }
    CHECK(*b->first_unseen() == 1);
    check_packed_view_matches_records(t.path);
    // Writers keep it from then on.
    append_subject(*b, "four");
    check_packed_view_matches_records(t.path);
}

TEST_CASE("mailstore: the root pages an open asks for are meta's and view's", "[mailstore]") {
    // FolderIndex::root_pages() reads LMDB's on-disk record of a named
    // database: checked here against the pages of the file themselves.
    TempRoot t;
    auto store = store_with_two_messages(t);
    auto idx = FolderIndex::open(t.path.string(), (t.path / "tern-index.lmdb").string());
    REQUIRE(idx.ok());
    auto txn = (*idx)->env().begin_read();
    REQUIRE(txn.ok());
    auto roots = (*idx)->root_pages(*txn);
    REQUIRE(roots.size() == 2);
    CHECK(roots[0] != roots[1]);
    MDB_stat st{};
    REQUIRE(mdb_env_stat((*idx)->env().get(), &st) == 0);
    std::ifstream file(t.path / "tern-index.lmdb", std::ios::binary);
    std::vector<std::string> pages;
    for (size_t root : roots) {
        std::string page(st.ms_psize, '\0');
        file.seekg(static_cast<std::streamoff>(root * st.ms_psize));
        REQUIRE(file.read(page.data(), static_cast<std::streamsize>(page.size())));
        size_t pgno = 0;
        uint16_t flags = 0;
        std::memcpy(&pgno, page.data(), sizeof pgno);  // MDB_page: page number, pad, flags
        std::memcpy(&flags, page.data() + sizeof pgno + 2, sizeof flags);
        CHECK(pgno == root);
        CHECK((flags & (0x01 | 0x02)) != 0);  // P_BRANCH or P_LEAF
        pages.push_back(page);
    }
    CHECK(pages[0].find("uidvalidity") != std::string::npos);  // meta's keys
}

TEST_CASE("mailstore header: the first unseen message is kept by every writer", "[mailstore]") {
    // Random appends, \Seen added and taken away, expunges, files renamed
    // and removed behind the store's back and deliveries, spanning several
    // chunks of the packed view: after each step a new session's [UNSEEN n]
    // (from the header, no chunk read) is what its view says.
    TempRoot t;
    auto store = open_store(t);
    auto writer = open_box(*store);
    std::mt19937 rng(11);
    auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
    Flags seen;
    seen.system = kSeen;
    Flags deleted;
    deleted.system = kDeleted;
    int checked_from_header = 0;
    for (int step = 0; step < 400; ++step) {
        (void)writer->refresh();
        const auto& view = writer->view();
        int op = static_cast<int>(rng() % 10);
        if (view.size() < 40 || op < 3) {
            // Appends in runs, so that UIDs cross chunk boundaries (512).
            for (int i = 0, n = 1 + static_cast<int>(rng() % 40); i < n; ++i)
                append_subject(*writer, "m" + std::to_string(step), rng() % 3 ? kSeen : 0);
        } else if (op < 5) {
            std::vector<uint32_t> uids;
            for (int i = 0; i < 3; ++i) uids.push_back(view[pick(view.size())].uid);
            REQUIRE(writer->store_flags(uids, op == 3 ? FlagOp::Add : FlagOp::Remove, seen).ok());
        } else if (op < 7) {
            std::vector<uint32_t> uids{view[pick(view.size())].uid, view[pick(view.size())].uid};
            REQUIRE(writer->store_flags(uids, FlagOp::Add, deleted).ok());
            REQUIRE(writer->expunge().ok());
        } else if (op < 8) {
            deliver(t.path, "Subject: delivered\n\nx\n");
        } else {
            // Another tool marks one message seen (or removes one).
            auto files = files_in(t.path / "cur");
            if (files.empty()) continue;
            auto name = files[pick(files.size())];
            if (op == 8 && name.find(":2,") != std::string::npos && name.find('S', name.find(":2,")) == std::string::npos)
                fs::rename(t.path / "cur" / name, t.path / "cur" / (name + "S"));
            else if (op == 9)
                fs::remove(t.path / "cur" / name);
        }
        auto fresh = open_store(t);
        auto session = open_box(*fresh);
        auto from_header = session->first_unseen();  // before anything loads the view
        REQUIRE(from_header.ok());
        uint32_t expected = 0;
        for (size_t i = 0; i < session->view().size(); ++i)
            if (!(session->view()[i].flags & kSeen)) {
                expected = static_cast<uint32_t>(i + 1);
                break;
            }
        REQUIRE(*from_header == expected);
        checked_from_header += inbox_meta(t).unseen_valid ? 1 : 0;
    }
    CHECK(checked_from_header == 400);

    // None unseen; then an old message loses \Seen; then none again and
    // new messages arrive, the first of them seen.
    auto unseen_of_new_session = [&] {
        auto session = open_box(*open_store(t));
        auto n = session->first_unseen();
        REQUIRE(n.ok());
        return *n;
    };
    (void)writer->refresh();
    std::vector<uint32_t> all;
    for (const auto& e : writer->view()) all.push_back(e.uid);
    REQUIRE(all.size() > 10);
    REQUIRE(writer->store_flags(all, FlagOp::Add, seen).ok());
    CHECK(unseen_of_new_session() == 0);
    REQUIRE(writer->store_flags(std::vector<uint32_t>{all[5]}, FlagOp::Remove, seen).ok());
    CHECK(unseen_of_new_session() == 6);
    REQUIRE(writer->store_flags(std::vector<uint32_t>{all[5]}, FlagOp::Add, seen).ok());
    CHECK(unseen_of_new_session() == 0);
    append_subject(*writer, "new and seen", kSeen);
    append_subject(*writer, "new", 0);
    append_subject(*writer, "newer", 0);
    CHECK(unseen_of_new_session() == all.size() + 2);
}

TEST_CASE("mailstore header: an index without the first unseen message walks the view, the next writer keeps it",
          "[mailstore]") {
    TempRoot t;
    auto store = store_with_two_messages(t);  // "one" unseen, "two" \Seen
    change_inbox_index(t, [](FolderIndex& idx, tern::lmdb::Txn& txn) -> tern::Status {
        auto r = txn.del(idx.meta, "first_unseen");  // as this branch's earlier layout had it
        if (!r) return r.error();
        return *r ? tern::Status{} : tern::Status{tern::Error{"no first_unseen to remove"}};
    });
    CHECK_FALSE(inbox_meta(t).unseen_valid);
    auto b = open_box(*open_store(t));
    auto n = b->first_unseen();
    REQUIRE(n.ok());
    CHECK(*n == 1);
    Flags seen;
    seen.system = kSeen;
    REQUIRE(b->store_flags(std::vector<uint32_t>{1}, FlagOp::Add, seen).ok());
    CHECK(inbox_meta(t).unseen_valid);
    auto c = open_box(*open_store(t));
    n = c->first_unseen();
    REQUIRE(n.ok());
    CHECK(*n == 0);
}

TEST_CASE("mailstore packed view: a delta applies the last change of each UID", "[mailstore]") {
    TempRoot t;
    fs::create_directories(t.path);
    tern::lmdb::Env::Options opt;
    opt.flags = MDB_NOSUBDIR;
    auto env = tern::lmdb::Env::open((t.path / "view.lmdb").string(), opt);
    REQUIRE(env.ok());
    tern::lmdb::Dbi view{};
    auto make = [](uint8_t flags, uint64_t modseq) {
        MessageRecord r;
        r.flags = flags;
        r.modseq = modseq;
        r.crlf_size = 10;
        return r;
    };
    REQUIRE((*env)->write([&](tern::lmdb::Txn& txn) -> tern::Status {
        auto d = txn.open_dbi("view", MDB_CREATE);
        if (!d) return d.error();
        view = *d;
        ViewDelta delta;
        delta.put(5, make(kSeen, 2));
        delta.put(kUidsPerChunk + 1, make(0, 2));
        delta.put(7, make(0, 2));
        delta.erase(5);
        delta.put(7, make(kFlagged, 3));
        return delta.flush(txn, view);
    }).ok());
    std::vector<PackedEntry> got;
    auto txn = (*env)->begin_read();
    REQUIRE(txn.ok());
    REQUIRE(for_each_packed(*txn, view, Prefetch::None, [&](const PackedEntry& e) {
        got.push_back(e);
        return true;
    }).ok());
    REQUIRE(got.size() == 2);
    CHECK(got[0] == PackedEntry{7, kFlagged, 0, 3, 10});
    CHECK(got[1].uid == kUidsPerChunk + 1);
}

TEST_CASE("mailstore packed view: a chunk that does not decode is not trusted, and rebuilt", "[mailstore]") {
    TempRoot t;
    auto store = store_with_two_messages(t);
    change_inbox_index(t, [](FolderIndex& idx, tern::lmdb::Txn& txn) {
        return txn.put(idx.view, uid_key(0), "garbage");  // chunk 0: UIDs 1 and 2
    });
    // Readers fall back to the records.
    auto b = open_box(*store);
    REQUIRE(b->view().size() == 2);
    CHECK(b->view()[1].flags == kSeen);
    CHECK(*b->first_unseen() == 1);
    // A writer drops the chunk and the stamp; the next open builds the view again.
    CHECK(append_subject(*b, "three") == 3);
    {
        auto idx = FolderIndex::open(t.path.string(), (t.path / "tern-index.lmdb").string());
        REQUIRE(idx.ok());
        auto txn = (*idx)->env().begin_read();
        REQUIRE(txn.ok());
        CHECK_FALSE((*idx)->read_meta(*txn)->view_valid);
    }
    CHECK(open_box(*store, true)->view().size() == 3);
    check_packed_view_matches_records(t.path);
}

TEST_CASE("mailstore: the vanished table is bounded; QRESYNC from before the forgotten expunges is not complete",
          "[mailstore]") {
    TempRoot t;
    auto store = store_with_two_messages(t);
    // 130,000 old expunges (UIDs 1000..; modseq 10 + i / 10: ten share a
    // modseq, so the cut must take or keep them together).
    uint64_t floor = 0;
    change_inbox_index(t, [&](FolderIndex& idx, tern::lmdb::Txn& txn) -> tern::Status {
        for (uint32_t i = 0; i < 130000; ++i) {
            uint64_t modseq = 10 + i / 10;
            std::string value(reinterpret_cast<const char*>(&modseq), sizeof modseq);
            if (auto s = txn.put(idx.vanished, uid_key(1000 + i), value); !s) return s;
        }
        auto m = idx.read_meta(txn);
        if (!m) return m.error();
        m->modseq = 20000;
        if (auto s = idx.bound_vanished(txn, *m); !s) return s;
        floor = m->vanished_floor;
        return idx.write_meta(txn, *m);
    });
    // The 30,000 oldest go (modseqs 10..3009), the newest 100,000 stay.
    CHECK(floor == 3009);
    auto box = open_box(*store);
    bool complete = true;
    auto gone = box->vanished_since(floor - 1, complete);
    REQUIRE(gone.ok());
    CHECK_FALSE(complete);  // imapd then reports every known UID that is not there
    gone = box->vanished_since(floor, complete);
    REQUIRE(gone.ok());
    CHECK(complete);
    CHECK(gone->size() == 100000);
    CHECK(gone->front() == 1000 + 30000);
    // A table below the bound is left alone.
    change_inbox_index(t, [&](FolderIndex& idx, tern::lmdb::Txn& txn) -> tern::Status {
        auto m = idx.read_meta(txn);
        if (!m) return m.error();
        if (auto s = idx.bound_vanished(txn, *m); !s) return s;
        CHECK(m->vanished_floor == floor);
        return {};
    });
}
