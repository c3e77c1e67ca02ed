// The commit log (lib/queue/commit_log.hpp) and its recovery by Store.
#include <catch2/catch.hpp>
#include <dirent.h>
#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "lib/core/crc32c.hpp"
#include "lib/queue/commit_log.hpp"
#include "lib/queue/queue.hpp"
#include "lib/queue/records.hpp"

using namespace tern;
using namespace tern::queue;

namespace {

struct LogDir {
    std::string path;
    LogDir() {
        char tmpl[] = "/tmp/tern-commit-log-test-XXXXXX";
        path = ::mkdtemp(tmpl);
        std::filesystem::create_directory(path + "/commitlog");
    }
    ~LogDir() { std::filesystem::remove_all(path); }
    std::string file(const CommitLog& log) const { return path + "/commitlog/" + log.name() + ".log"; }
    size_t files() const {
        size_t n = 0;
        for (const auto& e : std::filesystem::directory_iterator(path + "/commitlog")) n += e.is_regular_file();
        return n;
    }
};

Message message(const std::string& tag, size_t body = 100) {
    Message m;
    m.envelope.id = new_queue_id();
    m.envelope.sender = tag + "@example.org";
    m.envelope.arrival_us = 1700000000000000;
    m.envelope.protocol = "ESMTP";
    Recipient r;
    r.address = "demo@tern.test";
    m.recipients = {r, r};
    m.recipients[1].address = "other@tern.test";
    m.small_body = "Subject: " + tag + "\n\n" + std::string(body, 'b') + "\n";
    return m;
}

std::vector<CommitLog::Record> read_file(const std::string& path, uint64_t after) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    auto records = CommitLog::read(fd, after);
    ::close(fd);
    REQUIRE(records.ok());
    return std::move(*records);
}

}  // namespace

TEST_CASE("crc32c: the standard check value", "[queue][commit-log]") {
    CHECK(crc32c("123456789") == 0xE3069283u);
    CHECK(crc32c("56789", crc32c("1234")) == 0xE3069283u);
    CHECK(crc32c("") == 0);
    CHECK(crc32c_table("123456789") == 0xE3069283u);
    // The CPU's instruction (when used) and the table agree at every
    // length and alignment, and when continued.
    std::string data;
    for (int i = 0; i < 300; ++i) data.push_back(char(i * 37 + 11));
    for (size_t start = 0; start < 9; ++start)
        for (size_t len = 0; start + len <= data.size(); len += 7) {
            std::string_view part(data.data() + start, len);
            CHECK(crc32c(part) == crc32c_table(part));
            CHECK(crc32c(part, 0x12345678u) == crc32c_table(part, 0x12345678u));
        }
}

TEST_CASE("commit log: records come back whole and in order, past a checkpoint", "[queue][commit-log]") {
    LogDir dir;
    auto log = CommitLog::create(dir.path);
    REQUIRE(log.ok());
    std::vector<Message> sent = {message("a"), message("b"), message("c")};
    auto first = (*log)->append({&sent[0], &sent[1]});
    auto second = (*log)->append({&sent[2]});
    REQUIRE(first.ok());
    REQUIRE(second.ok());
    CHECK(first->seq == 1);
    CHECK(first->count == 2);
    CHECK(second->seq == 2);
    CHECK(second->count == 1);

    auto all = read_file(dir.file(**log), 0);
    REQUIRE(all.size() == 2);
    CHECK(all[0].seq == 1);
    REQUIRE(all[0].messages.size() == 2);
    CHECK(all[0].messages[0].envelope.id == sent[0].envelope.id);
    CHECK(all[0].messages[1].envelope.sender == "b@example.org");
    CHECK(all[0].messages[1].recipients.size() == 2);
    CHECK(all[0].messages[1].recipients[1].address == "other@tern.test");
    CHECK(all[0].messages[1].small_body == sent[1].small_body);
    CHECK(all[1].messages[0].envelope.id == sent[2].envelope.id);

    auto after_first = read_file(dir.file(**log), 1);
    REQUIRE(after_first.size() == 1);
    CHECK(after_first[0].seq == 2);
    CHECK(read_file(dir.file(**log), 2).empty());
}

TEST_CASE("commit log: the ring wraps and reuses only checkpointed blocks", "[queue][commit-log]") {
    LogDir dir;
    auto log = CommitLog::create(dir.path, 16 * CommitLog::kBlock);
    REQUIRE(log.ok());
    // Each record takes 2 blocks (a 5,000-byte body); 15 usable blocks, so
    // 40 records go round the file five times.
    uint64_t seq = 0;
    std::vector<std::string> ids;
    for (int i = 0; i < 40; ++i) {
        Message m = message("r" + std::to_string(i), 5000);
        ids.push_back(m.envelope.id);
        auto s = (*log)->append({&m});
        REQUIRE(s.ok());
        seq = s->seq;
        if (i < 37) (*log)->checkpointed(seq);  // the last three stay pending
    }
    CHECK_FALSE((*log)->drained());
    auto pending = read_file(dir.file(**log), 37);
    REQUIRE(pending.size() == 3);
    for (int k = 0; k < 3; ++k) {
        CHECK(pending[k].seq == uint64_t(38 + k));
        CHECK(pending[k].messages.at(0).envelope.id == ids[37 + k]);
    }
    (*log)->checkpointed(seq);
    CHECK((*log)->drained());
}

TEST_CASE("commit log: a full ring waits for a checkpoint", "[queue][commit-log]") {
    LogDir dir;
    auto log = CommitLog::create(dir.path, 8 * CommitLog::kBlock);
    REQUIRE(log.ok());
    Message m = message("x", 5000);  // 2 blocks of the 7 usable
    for (int i = 0; i < 3; ++i) REQUIRE((*log)->append({&m}).ok());
    std::thread store([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        (*log)->checkpointed(2);
    });
    auto fourth = (*log)->append({&m});  // waits until blocks are free
    store.join();
    REQUIRE(fourth.ok());
    CHECK(fourth->seq == 4);
}

TEST_CASE("commit log: a message too large for a record fails, writing nothing", "[queue][commit-log]") {
    LogDir dir;
    auto log = CommitLog::create(dir.path, 8 * CommitLog::kBlock);
    REQUIRE(log.ok());
    Message big = message("big", 4 * CommitLog::kBlock);
    auto r = (*log)->append({&big});
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.message(), Catch::Contains("too large"));
    CHECK(read_file(dir.file(**log), 0).empty());
    CHECK((*log)->drained());
}

TEST_CASE("commit log: a batch larger than a record goes a record at a time", "[queue][commit-log]") {
    LogDir dir;
    auto log = CommitLog::create(dir.path, 16 * CommitLog::kBlock);  // records of up to 7 blocks
    REQUIRE(log.ok());
    std::vector<Message> batch;
    for (int i = 0; i < 12; ++i) batch.push_back(message("m" + std::to_string(i), 5000));
    std::vector<const Message*> pointers;
    for (const auto& m : batch) pointers.push_back(&m);
    // 12 messages of ~5 KB: 60 KB, more than the whole ring.  Each record
    // is checkpointed before the next (as the store thread would).
    size_t done = 0, records = 0;
    while (done < pointers.size()) {
        auto appended = (*log)->append(pointers, done);
        REQUIRE(appended.ok());
        CHECK(appended->count >= 1);
        CHECK(appended->count <= 5);  // 7 blocks hold five 5 KB messages
        done += appended->count;
        ++records;
        (*log)->checkpointed(appended->seq);
    }
    CHECK(records >= 3);
    CHECK((*log)->drained());
}

TEST_CASE("commit log: torn and foreign records are not read", "[queue][commit-log]") {
    LogDir dir;
    auto log = CommitLog::create(dir.path);
    REQUIRE(log.ok());
    Message a = message("a"), b = message("b");
    REQUIRE((*log)->append({&a}).ok());
    REQUIRE((*log)->append({&b}).ok());
    const std::string path = dir.file(**log);
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE(fd >= 0);
    // Record 2 (block 2) loses a byte of its body, as a write cut short.
    char x = 'X';
    REQUIRE(::pwrite(fd, &x, 1, off_t(2 * CommitLog::kBlock + 200)) == 1);
    // A record with a right CRC but another log's nonce, in a free block:
    // what a message body imitating a header could at best look like.
    Message forged = message("forged");
    std::string payload(4, '\0');
    std::string encoded = records::encode_message(forged);
    for (int i = 0; i < 4; ++i) payload[size_t(i)] = char(uint8_t(encoded.size() >> (8 * i)));
    payload += encoded;
    std::string header(CommitLog::kHeaderSize, '\0');
    auto put = [&](size_t at, uint64_t v, int n) {
        for (int i = 0; i < n; ++i) header[at + size_t(i)] = char(uint8_t(v >> (8 * i)));
    };
    put(0, 0x1234567890abcdefULL, 8);
    put(8, 99, 8);
    put(16, payload.size(), 4);
    put(20, crc32c(payload, crc32c(std::string_view(header.data(), 20))), 4);
    std::string block = header + payload;
    REQUIRE(::pwrite(fd, block.data(), block.size(), off_t(10 * CommitLog::kBlock)) == ssize_t(block.size()));
    ::close(fd);

    auto records = read_file(path, 0);
    REQUIRE(records.size() == 1);
    CHECK(records[0].messages.at(0).envelope.id == a.envelope.id);
}

TEST_CASE("store: a dead process's log is replayed past its checkpoint, once", "[queue][commit-log]") {
    LogDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;
    Message delivered = message("delivered"), one = message("one"), two = message("two");
    std::string name;
    {
        auto log = CommitLog::create(dir.path);
        REQUIRE(log.ok());
        name = (*log)->name();
        REQUIRE((*log)->append({&delivered}).ok());
        // The store thread took record 1 (with its checkpoint) ...
        REQUIRE(s.insert_logged({delivered}, name, 1).ok());
        (*log)->checkpointed(1);
        REQUIRE((*log)->append({&one}).ok());
        REQUIRE((*log)->append({&two}).ok());
        // ... and qmgr delivered it and removed it before the crash.
        REQUIRE(s.remove(delivered.envelope.id).ok());
        // A live log is not touched.
        CHECK(s.recover_logs() == 0);
        CHECK(dir.files() == 1);
    }  // the process "dies": its lock goes with its descriptor

    CHECK(s.recover_logs() == 2);
    CHECK(s.load(one.envelope.id));
    CHECK(s.load(two.envelope.id));
    CHECK_FALSE(s.load(delivered.envelope.id));  // never delivered twice
    auto m = s.load(two.envelope.id);
    REQUIRE(m);
    CHECK(m->recipients.size() == 2);
    auto body = s.small_body(two.envelope.id);
    REQUIRE(body.ok());
    REQUIRE(*body);
    CHECK(**body == two.small_body);
    CHECK(s.due(::time(nullptr) + 1, 10).size() == 2);
    CHECK(dir.files() == 0);
    auto checkpoint = s.log_checkpoint(name);
    REQUIRE(checkpoint.ok());
    CHECK(*checkpoint == 0);  // forgotten with the file
    CHECK(s.recover_logs() == 0);
    CHECK(s.list_all().size() == 2);
}

TEST_CASE("store: open() recovers; an old staging file of a dead creator goes, a new one stays", "[queue][commit-log]") {
    LogDir dir;
    Message kept = message("kept");
    {
        auto store = Store::open(dir.path);
        REQUIRE(store.ok());
        auto log = CommitLog::create(dir.path);
        REQUIRE(log.ok());
        REQUIRE((*log)->append({&kept}).ok());
    }
    // A staging file of a creator that died long ago goes; one just made
    // may be a creator between its create and its lock, and stays.
    const std::string old_staging = dir.path + "/commitlog/0123456789abcdef.new";
    const std::string new_staging = dir.path + "/commitlog/fedcba9876543210.new";
    { std::ofstream(old_staging) << "half made"; }
    { std::ofstream(new_staging) << "being made"; }
    const timeval long_ago[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
    REQUIRE(::utimes(old_staging.c_str(), long_ago) == 0);
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    CHECK((*store)->recovered_at_open() == 1);
    CHECK((*store)->load(kept.envelope.id));
    CHECK_FALSE(std::filesystem::exists(old_staging));
    CHECK(std::filesystem::exists(new_staging));
    CHECK(dir.files() == 1);
}

TEST_CASE("store: a checkpoint whose log is gone is dropped, a live log's stays", "[queue][commit-log]") {
    LogDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;
    auto live = CommitLog::create(dir.path);
    REQUIRE(live.ok());
    Message a = message("a"), b = message("b");
    REQUIRE((*live)->append({&a}).ok());
    REQUIRE(s.insert_logged({a}, (*live)->name(), 1).ok());
    REQUIRE(s.insert_logged({b}, "00000000deadbeef", 7).ok());  // its file was unlinked, the key stayed
    CHECK(s.recover_logs() == 0);
    auto gone = s.log_checkpoint("00000000deadbeef");
    auto kept = s.log_checkpoint((*live)->name());
    REQUIRE(gone.ok());
    REQUIRE(kept.ok());
    CHECK(*gone == 0);
    CHECK(*kept == 1);
    CHECK(s.load(a.envelope.id));
    CHECK(s.load(b.envelope.id));
}

TEST_CASE("store: wait_for_logged() returns once a live log's records are in LMDB", "[queue][commit-log]") {
    LogDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;
    CHECK(s.wait_for_logged(std::chrono::milliseconds(0)));  // no log at all
    Message one = message("one"), two = message("two");
    auto log = CommitLog::create(dir.path);
    REQUIRE(log.ok());
    const std::string name = (*log)->name();
    CHECK(s.wait_for_logged(std::chrono::milliseconds(0)));  // a live log with nothing pending
    REQUIRE((*log)->append({&one}).ok());
    REQUIRE((*log)->append({&two}).ok());
    // Logged (the clients have their 250), not yet stored: a wait times out.
    CHECK_FALSE(s.wait_for_logged(std::chrono::milliseconds(30)));
    // The store thread takes record 1 now and record 2 a little later.
    REQUIRE(s.insert_logged({one}, name, 1).ok());
    bool stored = false;  // Catch2's assertions are for this thread only
    std::thread store_thread([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        stored = s.insert_logged({two}, name, 2).ok();
    });
    CHECK(s.wait_for_logged(std::chrono::seconds(10)));
    store_thread.join();
    CHECK(stored);
    CHECK(s.load(two.envelope.id));
}
