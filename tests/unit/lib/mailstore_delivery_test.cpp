// Unit tests for Store::begin_delivery (lib/mailstore): a delivery gets its
// UID at commit and lands in new/ under the caller's name; the same name
// is never stored twice; a retry finds an earlier copy in new/ or cur/
// with flags; the quota refuses before anything is written; a folder
// delivery creates the folder; bad names are refused; group commit of
// staged writers; a Store kept open follows folders made again.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <string>

#include "lib/mailstore/maildir_store.hpp"
#include "lib/maildir/quota.hpp"

using namespace tern::mailstore;
namespace fs = std::filesystem;

namespace {

struct TempRoot {
    fs::path path;
    TempRoot() {
        char tmpl[] = "/tmp/tern-delivery-XXXXXX";
        path = ::mkdtemp(tmpl);
        path /= "Maildir";
    }
    ~TempRoot() { fs::remove_all(path.parent_path()); }
};

std::unique_ptr<Store> open_store(const TempRoot& t, uint64_t quota = 0) {
    MaildirOptions o;
    o.root = t.path.string();
    o.quota_bytes = quota;
    auto s = open_maildir_store(o);
    REQUIRE(s.ok());
    return std::move(*s);
}

std::vector<std::string> files_in(const fs::path& dir) {
    std::vector<std::string> out;
    if (!fs::exists(dir)) return out;
    for (auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

// Delivers text; returns the UID (0 for an earlier copy) and sets earlier.
uint32_t deliver(Store& store, const DeliveryOptions& d, std::string_view text, bool* earlier = nullptr) {
    auto start = store.begin_delivery(d);
    REQUIRE(start.ok());
    REQUIRE(start->outcome == DeliveryStart::Outcome::Write);
    REQUIRE(start->writer->write(text).ok());
    auto uid = start->writer->commit(Flags{});
    REQUIRE(uid.ok());
    if (earlier) *earlier = start->writer->earlier();
    return *uid;
}

const std::string kMessage = "From: a@example.org\r\nSubject: hello there\r\n\r\nbody line\r\n";

}  // namespace

TEST_CASE("delivery: the index knows the message at commit, file in new/ under the chosen name",
          "[mailstore][delivery]") {
    TempRoot t;
    auto store = open_store(t);
    DeliveryOptions d;
    d.unique_name = "1700000000.0123456789ABCD_0.mail.example";
    d.expected_size = kMessage.size();
    uint32_t uid = deliver(*store, d, kMessage);
    CHECK(uid == 1);
    // LF on disk: S= counts LF bytes, W= the CRLF size.
    auto names = files_in(t.path / "new");
    REQUIRE(names.size() == 1);
    CHECK(names[0] == d.unique_name + ",S=" + std::to_string(kMessage.size() - 4) + ",W=" +
                          std::to_string(kMessage.size()));
    CHECK(files_in(t.path / "tmp").empty());
    // A reader sees the same UID, sizes and the envelope cached at delivery
    // (after its sync moved the file to cur/).
    auto mb = store->open("INBOX");
    REQUIRE(mb.ok());
    REQUIRE((*mb)->view().size() == 1);
    CHECK((*mb)->view()[0].uid == 1);
    CHECK(files_in(t.path / "cur") == std::vector<std::string>{names[0] + ":2,"});
    std::string envelope;
    uint64_t crlf = 0;
    uint32_t uids[] = {1};
    REQUIRE((*mb)->for_each(uids, kFieldEnvelope | kFieldSizes, [&](const MessageData& m) {
                     envelope = std::string(m.envelope);
                     crlf = m.crlf_size;
                 }).ok());
    CHECK(envelope.find("\"hello there\"") != std::string::npos);
    CHECK(crlf == kMessage.size());
    auto body = (*mb)->open_body(1);
    REQUIRE(body.ok());
    CHECK((*body)->bytes() == "From: a@example.org\nSubject: hello there\n\nbody line\n");
    // The next delivery gets the next UID.
    DeliveryOptions second;
    CHECK(deliver(*store, second, kMessage) == 2);
    auto changes = (*mb)->refresh();
    REQUIRE(changes.ok());
    CHECK(changes->new_uids == std::vector<uint32_t>{2});
}

TEST_CASE("delivery: the same name is stored once", "[mailstore][delivery]") {
    TempRoot t;
    auto store = open_store(t);
    DeliveryOptions d;
    d.unique_name = "1700000000.0123456789ABCD_1.host";
    bool earlier = true;
    CHECK(deliver(*store, d, kMessage, &earlier) == 1);
    CHECK_FALSE(earlier);
    // A retry that does not know its result was lost: the name is taken.
    CHECK(deliver(*store, d, kMessage, &earlier) == 0);
    CHECK(earlier);
    CHECK(files_in(t.path / "new").size() == 1);
    CHECK(files_in(t.path / "tmp").empty());
    auto mb = store->open("INBOX");
    REQUIRE(mb.ok());
    CHECK((*mb)->view().size() == 1);
}

TEST_CASE("delivery: a retry finds the earlier copy in new/ and in cur/ with flags", "[mailstore][delivery]") {
    TempRoot t;
    auto store = open_store(t);
    DeliveryOptions d;
    d.unique_name = "1700000000.0123456789ABCD_2.host";
    deliver(*store, d, kMessage);
    d.maybe_delivered = true;
    auto again = store->begin_delivery(d);
    REQUIRE(again.ok());
    CHECK(again->outcome == DeliveryStart::Outcome::AlreadyStored);
    CHECK_FALSE(again->writer);
    // A reader moved it to cur/ and marked it seen.
    auto name = files_in(t.path / "new").at(0);
    fs::rename(t.path / "new" / name, t.path / "cur" / (name + ":2,S"));
    again = store->begin_delivery(d);
    REQUIRE(again.ok());
    CHECK(again->outcome == DeliveryStart::Outcome::AlreadyStored);
    // Another recipient of the same message (index 20 vs 2) is not mistaken for it.
    DeliveryOptions other = d;
    other.unique_name = "1700000000.0123456789ABCD_20.host";
    auto fresh = store->begin_delivery(other);
    REQUIRE(fresh.ok());
    CHECK(fresh->outcome == DeliveryStart::Outcome::Write);
    // Written under another host name: found only when the host part may differ.
    DeliveryOptions renamed = d;
    renamed.unique_name = "1700000000.0123456789ABCD_2.newhost";
    auto exact = store->begin_delivery(renamed);
    REQUIRE(exact.ok());
    CHECK(exact->outcome == DeliveryStart::Outcome::Write);
    renamed.retry_match = std::string("1700000000.0123456789ABCD_2.").size();
    auto any_host = store->begin_delivery(renamed);
    REQUIRE(any_host.ok());
    CHECK(any_host->outcome == DeliveryStart::Outcome::AlreadyStored);
}

TEST_CASE("delivery: the quota refuses before writing, and counts what was delivered", "[mailstore][delivery]") {
    TempRoot t;
    auto store = open_store(t, 100);
    DeliveryOptions d;
    d.expected_size = 60;
    deliver(*store, d, std::string(59, 'x') + "\n");
    d.expected_size = 41;
    auto start = store->begin_delivery(d);
    REQUIRE(start.ok());
    CHECK(start->outcome == DeliveryStart::Outcome::OverQuota);
    CHECK(files_in(t.path / "tmp").empty());
    d.expected_size = 40;
    start = store->begin_delivery(d);
    REQUIRE(start.ok());
    CHECK(start->outcome == DeliveryStart::Outcome::Write);
    auto usage = tern::maildir::quota_usage(t.path.string(), 100);
    REQUIRE(usage.ok());
    CHECK(usage->bytes == 60);
    CHECK(usage->messages == 1);
}

TEST_CASE("delivery: into a folder, created when missing", "[mailstore][delivery]") {
    TempRoot t;
    auto store = open_store(t);
    DeliveryOptions d;
    d.folder = "Lists/tern";
    CHECK(deliver(*store, d, kMessage) == 1);
    auto exists = store->exists("Lists/tern");
    REQUIRE(exists.ok());
    CHECK(*exists);
    auto mb = store->open("Lists/tern");
    REQUIRE(mb.ok());
    CHECK((*mb)->view().size() == 1);
    auto inbox = store->open("INBOX");
    REQUIRE(inbox.ok());
    CHECK((*inbox)->view().empty());
}

TEST_CASE("delivery: hostile names and folders are refused", "[mailstore][delivery]") {
    TempRoot t;
    auto store = open_store(t);
    for (const std::string& bad : std::vector<std::string>{"../x", "a/b", "a:2,S", "a,S=1", ".hidden", "a b", std::string("a\0b", 3),
                            std::string(201, 'a')}) {
        DeliveryOptions d;
        d.unique_name = bad;
        CHECK_FALSE(store->begin_delivery(d).ok());
    }
    DeliveryOptions d;
    d.folder = "a//b";
    CHECK_FALSE(store->begin_delivery(d).ok());
    CHECK(files_in(t.path / "new").empty());
}

TEST_CASE("delivery: CRLF stored as LF across pieces, lone CRs kept, W= exact", "[mailstore][delivery]") {
    TempRoot t;
    auto store = open_store(t);
    auto start = store->begin_delivery(DeliveryOptions{});
    REQUIRE(start.ok());
    auto& w = *start->writer;
    for (std::string_view piece : {"a\r", "\nb\r\r", "\nc\rd\n", "", "\r", "\r\n"}) REQUIRE(w.write(piece).ok());
    auto uid = w.commit(Flags{});
    REQUIRE(uid.ok());
    auto mb = store->open("INBOX");
    REQUIRE(mb.ok());
    auto body = (*mb)->open_body(*uid);
    REQUIRE(body.ok());
    CHECK((*body)->bytes() == "a\nb\r\nc\rd\n\r\n");
    uint64_t crlf = 0;
    uint32_t uids[] = {*uid};
    REQUIRE((*mb)->for_each(uids, kFieldSizes, [&](const MessageData& m) { crlf = m.crlf_size; }).ok());
    // Every LF not already after a CR gains one: a\n, d\n → +2.
    CHECK(crlf == 11 + 2);
}

// Group commit (local-delivery): writers staged in two folders, their data
// synced, published together: one UID sequence per folder, in staging order,
// the files in new/ only after publish, a name given twice stored once.
TEST_CASE("delivery: group commit of staged writers in two folders", "[mailstore][delivery]") {
    TempRoot t;
    auto store = open_store(t);
    std::vector<std::unique_ptr<MessageWriter>> writers;
    auto stage = [&](const std::string& folder, const std::string& name) {
        DeliveryOptions d;
        d.folder = folder;
        d.unique_name = name;
        auto start = store->begin_delivery(d);
        REQUIRE(start.ok());
        REQUIRE(start->outcome == DeliveryStart::Outcome::Write);
        REQUIRE(start->writer->write(kMessage).ok());
        REQUIRE(start->writer->stage(Flags{}).ok());
        writers.push_back(std::move(start->writer));
    };
    stage("INBOX", "1700000000.0123456789ABCD_0.host");
    stage("Lists", "1700000000.0123456789ABCD_1.host");
    stage("INBOX", "1700000000.0123456789ABCD_2.host");
    stage("INBOX", "1700000000.0123456789ABCD_0.host");  // the first one again (an alias twice)
    stage("Lists", "1700000000.0123456789ABCD_3.host");
    CHECK(files_in(t.path / "new").empty());  // nothing visible before publish

    for (auto& w : writers) REQUIRE(w->data_sync()().ok());
    std::vector<MessageWriter*> raw;
    for (auto& w : writers) raw.push_back(w.get());
    std::vector<std::function<tern::Status()>> syncs;
    store->publish(raw, syncs);
    // INBOX: new/ and its index; Lists: the same (nothing went to cur/).
    CHECK(syncs.size() == 4);
    for (auto& job : syncs) REQUIRE(job().ok());

    std::vector<uint32_t> uids;
    for (auto& w : writers) {
        auto uid = w->result();
        REQUIRE(uid.ok());
        uids.push_back(*uid);
    }
    CHECK(uids == std::vector<uint32_t>{1, 1, 2, 0, 2});
    CHECK(writers[3]->earlier());
    CHECK_FALSE(writers[0]->earlier());
    CHECK(files_in(t.path / "new").size() == 2);
    CHECK(files_in(t.path / ".Lists" / "new").size() == 2);
    CHECK(files_in(t.path / "tmp").empty());
    CHECK(files_in(t.path / ".Lists" / "tmp").empty());
    auto mb = store->open("INBOX");
    REQUIRE(mb.ok());
    REQUIRE((*mb)->view().size() == 2);
    CHECK((*mb)->view()[1].uid == 2);
    // The next lone delivery continues the sequence.
    DeliveryOptions next;
    CHECK(deliver(*store, next, kMessage) == 3);
}

TEST_CASE("delivery: a writer not staged or not published reports an error, removes its file",
          "[mailstore][delivery]") {
    TempRoot t;
    auto store = open_store(t);
    auto start = store->begin_delivery(DeliveryOptions{});
    REQUIRE(start.ok());
    REQUIRE(start->writer->write(kMessage).ok());
    CHECK_FALSE(start->writer->data_sync()().ok());  // not staged yet
    MessageWriter* raw[] = {start->writer.get()};
    std::vector<std::function<tern::Status()>> syncs;
    store->publish(raw, syncs);
    CHECK(syncs.empty());
    CHECK_FALSE(start->writer->result().ok());
    CHECK(files_in(t.path / "tmp").size() == 1);
    start->writer.reset();
    CHECK(files_in(t.path / "tmp").empty());
    CHECK(files_in(t.path / "new").empty());
}

// local-delivery keeps its Store open: a folder deleted and made again by
// imapd meanwhile gets the delivery in its new index, not the old one.
TEST_CASE("delivery: a kept Store follows a folder deleted and created again", "[mailstore][delivery]") {
    TempRoot t;
    auto store = open_store(t);
    CHECK(deliver(*store, DeliveryOptions{}, kMessage) == 1);
    DeliveryOptions d;
    d.folder = "Lists";
    CHECK(deliver(*store, d, kMessage) == 1);
    CHECK(deliver(*store, d, kMessage) == 2);
    auto other = open_store(t);  // imapd's
    REQUIRE(other->delete_folder("Lists").ok());
    REQUIRE(other->create_folder("Lists").ok());
    CHECK(deliver(*store, d, kMessage) == 1);
    auto mb = other->open("Lists");
    REQUIRE(mb.ok());
    REQUIRE((*mb)->view().size() == 1);
    // The whole Maildir removed: made again at the next delivery.
    fs::remove_all(t.path);
    CHECK(deliver(*store, DeliveryOptions{}, kMessage) == 1);
    CHECK(files_in(t.path / "new").size() == 1);
}

TEST_CASE("delivery: a kept Store makes tmp/ or new/ again when one was removed by hand", "[mailstore][delivery]") {
    TempRoot t;
    auto store = open_store(t);
    CHECK(deliver(*store, DeliveryOptions{}, kMessage) == 1);  // the index is kept from here on
    fs::remove_all(t.path / "tmp");
    CHECK(deliver(*store, DeliveryOptions{}, kMessage) == 2);
    CHECK(fs::is_directory(t.path / "tmp"));
    fs::remove_all(t.path / "new");
    CHECK(deliver(*store, DeliveryOptions{}, kMessage) == 3);
    CHECK(files_in(t.path / "new").size() == 1);
    CHECK(files_in(t.path / "tmp").empty());
}
