// Unit tests for lib/queue: queue ids, record encoding (valid and hostile
// bytes), the Store's records and due index, and group commit on a real
// libevent loop.
#include <catch2/catch.hpp>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "lib/queue/committer.hpp"
#include "lib/queue/queue.hpp"
#include "lib/sys/files.hpp"
#include "lib/queue/records.hpp"
#include "lib/queue/spare.hpp"

using namespace tern;
using namespace tern::queue;

namespace {

struct QueueTempDir {
    std::string path;
    QueueTempDir() {
        char tmpl[] = "/tmp/tern-queue-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~QueueTempDir() { std::filesystem::remove_all(path); }
};

Message sample_message(const std::string& id, int nrcpt = 2) {
    Message m;
    m.envelope.id = id;
    m.envelope.sender = "alice@example.org";
    m.envelope.arrival_us = 1700000000123456;
    m.envelope.size = 1234;
    m.envelope.client_name = "localhost";
    m.envelope.client_addr = "127.0.0.1";
    m.envelope.helo = "client.example.org";
    m.envelope.protocol = "ESMTPSA";
    m.envelope.auth_user = "alice";
    m.envelope.body_type = "8BITMIME";
    m.envelope.smtputf8 = true;
    m.envelope.dsn_ret = "HDRS";
    m.envelope.dsn_envid = "env-id-1";
    for (int i = 0; i < nrcpt; ++i) {
        Recipient r;
        r.address = "rcpt" + std::to_string(i) + "@example.net";
        r.orcpt = "rfc822;" + r.address;
        r.notify = kNotifyFailure | kNotifyDelay;
        m.recipients.push_back(r);
    }
    return m;
}

bool file_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

void write_body(Fd& fd, std::string_view text) {
    REQUIRE(::write(fd.get(), text.data(), text.size()) == ssize_t(text.size()));
}

}  // namespace

TEST_CASE("queue ids are valid, unique and increasing", "[queue]") {
    std::string last;
    std::set<std::string> seen;
    for (int i = 0; i < 100000; ++i) {
        std::string id = new_queue_id();
        REQUIRE(id.size() == 14);
        REQUIRE(valid_queue_id(id));
        REQUIRE(id > last);
        last = id;
        if (i % 100 == 0) seen.insert(id);
    }
    CHECK(seen.size() == 1000);
    CHECK_FALSE(valid_queue_id(""));
    CHECK_FALSE(valid_queue_id("0123456789ABC"));     // 13 chars
    CHECK_FALSE(valid_queue_id("0123456789ABCDE"));   // 15 chars
    CHECK_FALSE(valid_queue_id("../../etc/pass"));   // 14 chars, path characters
    CHECK_FALSE(valid_queue_id("0123456789abcd"));   // lower case
    CHECK_FALSE(valid_queue_id("0123456789ABCI"));   // I is not in the alphabet
}

TEST_CASE("queue records round trip", "[queue]") {
    Message m = sample_message("0000000000000A");
    m.envelope.is_bounce = true;
    m.envelope.arrival_us = -5;  // zigzag path
    auto e = records::decode_envelope("0000000000000A", records::encode_envelope(m.envelope));
    REQUIRE(e);
    CHECK(e->id == "0000000000000A");
    CHECK(e->sender == m.envelope.sender);
    CHECK(e->arrival_us == -5);
    CHECK(e->size == 1234);
    CHECK(e->client_name == "localhost");
    CHECK(e->client_addr == "127.0.0.1");
    CHECK(e->helo == m.envelope.helo);
    CHECK(e->protocol == "ESMTPSA");
    CHECK(e->auth_user == "alice");
    CHECK(e->body_type == "8BITMIME");
    CHECK(e->smtputf8);
    CHECK(e->is_bounce);
    CHECK(e->dsn_ret == "HDRS");
    CHECK(e->dsn_envid == "env-id-1");

    Recipient r = m.recipients[1];
    r.state = RecipientState::Bounced;
    r.attempts = 4000000000u;
    r.next_try = 1700000000;
    r.last_try = 1699999000;
    r.delay_warned = true;
    r.last_status = "5.1.1";
    r.last_error = "host said: 550 5.1.1 no such user";
    auto d = records::decode_recipient(7, records::encode_recipient(r));
    REQUIRE(d);
    CHECK(d->index == 7);
    CHECK(d->address == r.address);
    CHECK(d->orcpt == r.orcpt);
    CHECK(d->notify == (kNotifyFailure | kNotifyDelay));
    CHECK(d->state == RecipientState::Bounced);
    CHECK(d->attempts == 4000000000u);
    CHECK(d->next_try == 1700000000);
    CHECK(d->last_try == 1699999000);
    CHECK(d->delay_warned);
    CHECK(d->last_status == "5.1.1");
    CHECK(d->last_error == r.last_error);

    std::string key = records::rcpt_key("0000000000000A", 258);
    auto rk = records::split_rcpt_key(key);
    REQUIRE(rk);
    CHECK(rk->first == "0000000000000A");
    CHECK(rk->second == 258u);
    CHECK(records::due_key(1, "B") < records::due_key(256, "A"));
    CHECK(records::due_key(-10, "A") == records::due_key(0, "A"));
}

TEST_CASE("queue records: corrupt bytes are rejected, never a crash", "[queue]") {
    Message m = sample_message("0000000000000A");
    std::string env = records::encode_envelope(m.envelope);
    std::string rcpt = records::encode_recipient(m.recipients[0]);

    // Every truncation.
    for (size_t n = 0; n < env.size(); ++n) CHECK_FALSE(records::decode_envelope("X", env.substr(0, n)));
    for (size_t n = 0; n < rcpt.size(); ++n) CHECK_FALSE(records::decode_recipient(0, rcpt.substr(0, n)));
    // Trailing garbage, wrong version.
    CHECK_FALSE(records::decode_envelope("X", env + "x"));
    CHECK_FALSE(records::decode_recipient(0, rcpt + "x"));
    std::string v2 = env;
    v2[0] = 2;
    CHECK_FALSE(records::decode_envelope("X", v2));
    // A string length far past the end, and an overlong varint.
    CHECK_FALSE(records::decode_envelope("X", std::string("\x01\xff\xff\xff\xff\x0f", 6)));
    CHECK_FALSE(records::decode_envelope("X", std::string("\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13)));
    // Out-of-range values: recipient state 3, notify 16.
    Recipient r;
    std::string bad_state = records::encode_recipient(r);
    // layout: version, address "", orcpt "", notify, state, ...
    REQUIRE(bad_state.size() > 4);
    bad_state[4] = 3;
    CHECK_FALSE(records::decode_recipient(0, bad_state));
    std::string bad_notify = records::encode_recipient(r);
    bad_notify[3] = 16;
    CHECK_FALSE(records::decode_recipient(0, bad_notify));

    // Random mutations: whatever decodes must not crash (ASan build checks
    // memory safety); most must be rejected.
    std::mt19937 rng(12345);
    for (int i = 0; i < 20000; ++i) {
        std::string e = env, rr = rcpt;
        for (int k = 0; k < 3; ++k) {
            e[rng() % e.size()] = char(rng());
            rr[rng() % rr.size()] = char(rng());
        }
        (void)records::decode_envelope("X", e);
        (void)records::decode_recipient(0, rr);
    }
    std::string noise;
    for (int i = 0; i < 5000; ++i) {
        noise.assign(rng() % 64, '\0');
        for (auto& c : noise) c = char(rng());
        (void)records::decode_envelope("X", noise);
        (void)records::decode_recipient(0, noise);
    }
    CHECK_FALSE(records::split_rcpt_key("abc"));
    CHECK_FALSE(records::split_due_key("12345678"));
}

TEST_CASE("queue store: insert, load, update, remove round trip", "[queue]") {
    QueueTempDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;
    CHECK(file_exists(dir.path + "/db/data.mdb"));
    CHECK(file_exists(dir.path + "/msg"));

    std::string id = new_queue_id();
    auto body = s.create_body(id);
    REQUIRE(body.ok());
    write_body(*body, "Subject: hi\n\nhello\n");
    CHECK(s.body_path(id) == dir.path + "/msg/" + id.substr(12) + "/" + id);
    CHECK_FALSE(s.create_body(id).ok());  // O_EXCL
    CHECK_FALSE(s.create_body("../../x/yy").ok());

    const int64_t before = ::time(nullptr);
    REQUIRE(s.insert({sample_message(id, 3)}).ok());
    CHECK_FALSE(s.insert({sample_message(id, 1)}).ok());  // duplicate id

    auto m = s.load(id);
    REQUIRE(m);
    CHECK(m->envelope.id == id);
    CHECK(m->envelope.sender == "alice@example.org");
    CHECK(m->envelope.dsn_envid == "env-id-1");
    CHECK_FALSE(m->held);
    REQUIRE(m->recipients.size() == 3);
    for (uint32_t i = 0; i < 3; ++i) {
        CHECK(m->recipients[i].index == i);
        CHECK(m->recipients[i].state == RecipientState::Pending);
        CHECK(m->recipients[i].next_try >= before);
    }
    CHECK(m->recipients[2].address == "rcpt2@example.net");
    CHECK_FALSE(s.load("00000000000000"));

    // Deliver one, defer one, bounce one.
    auto r = m->recipients;
    r[0].state = RecipientState::Delivered;
    r[1].attempts = 1;
    r[1].next_try = before + 600;
    r[1].last_status = "4.4.1";
    r[1].last_error = "connection refused";
    r[2].state = RecipientState::Bounced;
    r[2].last_status = "5.1.1";
    REQUIRE(s.update_recipients(id, r).ok());
    auto m2 = s.load(id);
    REQUIRE(m2);
    CHECK(m2->recipients[0].state == RecipientState::Delivered);
    CHECK(m2->recipients[1].attempts == 1);
    CHECK(m2->recipients[1].last_error == "connection refused");
    CHECK(m2->recipients[2].state == RecipientState::Bounced);
    CHECK(s.due(before + 599, 10).empty());
    CHECK(s.due(before + 600, 10) == std::vector<std::string>{id});
    CHECK(s.next_due_time() == before + 600);

    // Unknown recipient index or message: errors, nothing changed.
    Recipient stray;
    stray.index = 9;
    CHECK_FALSE(s.update_recipients(id, {stray}).ok());
    CHECK_FALSE(s.update_recipients("00000000000000", {}).ok());

    // Updating only one recipient keeps the others.
    r[1].state = RecipientState::Delivered;
    REQUIRE(s.update_recipients(id, {r[1]}).ok());
    CHECK(s.load(id)->recipients[2].state == RecipientState::Bounced);
    CHECK_FALSE(s.next_due_time());  // nothing pending: gone from due

    REQUIRE(s.remove(id).ok());
    CHECK_FALSE(s.load(id));
    CHECK_FALSE(file_exists(s.body_path(id)));
    CHECK(s.list_all().empty());
    CHECK_FALSE(s.remove(id).ok());
}

TEST_CASE("queue store: due ordering, hold and set_all_due", "[queue]") {
    QueueTempDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;

    std::vector<std::string> ids;
    std::vector<Message> batch;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(new_queue_id());
        Message m = sample_message(ids.back(), 2);
        // Message i is due at 1000 - 100*i (so the last is due first); its
        // second recipient later still.
        m.recipients[0].next_try = 1000 - 100 * i;
        m.recipients[1].next_try = 5000;
        batch.push_back(m);
    }
    batch[4].held = true;
    REQUIRE(s.insert(batch).ok());

    CHECK(s.list_all().size() == 5);
    CHECK(s.list_all()[0].envelope.id == ids[0]);  // arrival order
    CHECK(s.load(ids[4])->held);

    // Held message 4 (due 600) is skipped; order by due time.
    CHECK(s.due(10000, 10) == std::vector<std::string>{ids[3], ids[2], ids[1], ids[0]});
    CHECK(s.due(800, 10) == std::vector<std::string>{ids[3], ids[2]});
    CHECK(s.due(10000, 2) == std::vector<std::string>{ids[3], ids[2]});
    CHECK(s.due(600, 10).empty());
    CHECK(s.next_due_time() == 700);
    // qmgr's active messages are passed over, and do not count to the limit.
    auto busy = [&](std::string_view id) { return id == ids[3] || id == ids[1]; };
    CHECK(s.due(10000, 10, busy) == std::vector<std::string>{ids[2], ids[0]});
    CHECK(s.due(10000, 1, busy) == std::vector<std::string>{ids[2]});

    REQUIRE(s.set_hold(ids[4], false).ok());
    CHECK(s.due(600, 10) == std::vector<std::string>{ids[4]});
    REQUIRE(s.set_hold(ids[3], true).ok());
    REQUIRE(s.set_hold(ids[3], true).ok());  // idempotent
    CHECK(s.due(10000, 10) == std::vector<std::string>{ids[4], ids[2], ids[1], ids[0]});
    CHECK_FALSE(s.set_hold("00000000000000", true).ok());

    // Delivering the early recipient moves the message to its later one.
    auto m0 = *s.load(ids[0]);
    m0.recipients[0].state = RecipientState::Delivered;
    REQUIRE(s.update_recipients(ids[0], m0.recipients).ok());
    CHECK(s.due(4999, 10) == std::vector<std::string>{ids[4], ids[2], ids[1]});
    CHECK(s.due(5000, 10).back() == ids[0]);

    // Flush: every pending recipient due at 42, held one still skipped.
    REQUIRE(s.set_all_due(42).ok());
    auto flushed = s.due(42, 10);
    CHECK(std::set<std::string>(flushed.begin(), flushed.end()) ==
          std::set<std::string>{ids[0], ids[1], ids[2], ids[4]});
    CHECK(s.next_due_time() == 42);
    auto after = s.load(ids[0]);
    REQUIRE(after);
    for (const auto& r : after->recipients)
        if (r.state == RecipientState::Pending) CHECK(r.next_try == 42);
    CHECK(after->recipients[0].state == RecipientState::Delivered);
    REQUIRE(s.set_hold(ids[3], false).ok());
    CHECK(s.due(42, 10).size() == 5);

    // Removing a held message removes it from everything.
    REQUIRE(s.set_hold(ids[1], true).ok());
    REQUIRE(s.remove(ids[1]).ok());
    CHECK(s.due(10000, 10).size() == 4);
    CHECK(s.list_all().size() == 4);
}

TEST_CASE("queue store: orphan bodies", "[queue]") {
    QueueTempDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;
    std::string orphan = new_queue_id(), queued = new_queue_id();
    REQUIRE(s.create_body(orphan).ok());
    REQUIRE(s.create_body(queued).ok());
    REQUIRE(s.insert({sample_message(queued)}).ok());
    // A stray file with a non-id name is not the queue's business.
    { Fd f(::open((dir.path + "/msg/README").c_str(), O_CREAT | O_WRONLY, 0600)); }

    CHECK(s.orphan_bodies(0) == std::vector<std::string>{orphan});
    CHECK(s.orphan_bodies(3600).empty());  // too young: DATA may be in progress
}

TEST_CASE("queue store: two Store instances see each other's writes", "[queue]") {
    QueueTempDir dir;
    auto a = Store::open(dir.path);
    auto b = Store::open(dir.path);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    std::string id1 = new_queue_id(), id2 = new_queue_id();
    REQUIRE((*a)->insert({sample_message(id1)}).ok());
    REQUIRE((*b)->load(id1));
    REQUIRE((*b)->insert({sample_message(id2)}).ok());
    CHECK((*a)->list_all().size() == 2);
    REQUIRE((*a)->set_hold(id2, true).ok());
    CHECK((*b)->load(id2)->held);
    REQUIRE((*b)->remove(id1).ok());
    CHECK_FALSE((*a)->load(id1));
}

namespace {

struct LoopFixture {
    event_base* base = nullptr;
    LoopFixture() {
        evthread_use_pthreads();
        base = event_base_new();
        REQUIRE(base);
    }
    ~LoopFixture() { event_base_free(base); }

    // Runs fn from inside the loop, then loops until stop() or timeout.
    void run(std::function<void()> fn, int timeout_s = 30) {
        start = std::move(fn);
        event* kick = event_new(base, -1, 0, [](evutil_socket_t, short, void* arg) {
            static_cast<LoopFixture*>(arg)->start();
        }, this);
        event* guard = event_new(base, -1, 0, [](evutil_socket_t, short, void* arg) {
            event_base_loopbreak(static_cast<event_base*>(arg));
        }, base);
        timeval zero{0, 0}, limit{timeout_s, 0};
        event_add(kick, &zero);
        event_add(guard, &limit);
        event_base_dispatch(base);
        event_free(kick);
        event_free(guard);
    }
    void stop() { event_base_loopbreak(base); }
    std::function<void()> start;
};

}  // namespace

TEST_CASE("queue committer: 50 submissions from the loop all commit", "[queue]") {
    QueueTempDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;
    LoopFixture loop;
    std::vector<std::string> ids;
    int done_ok = 0, done_err = 0;
    std::thread::id loop_thread = std::this_thread::get_id();
    bool wrong_thread = false;
    {
        Committer committer(loop.base, s);
        loop.run([&] {
            for (int i = 0; i < 50; ++i) {
                std::string id = new_queue_id();
                ids.push_back(id);
                auto body = s.create_body(id);
                REQUIRE(body.ok());
                write_body(*body, "Subject: " + std::to_string(i) + "\n\nbody\n");
                Message m = sample_message(id, 1 + i % 3);
                m.envelope.size = 0;  // filled in from the file
                committer.submit(std::move(m), std::move(*body), [&](const Status& st) {
                    if (std::this_thread::get_id() != loop_thread) wrong_thread = true;
                    (st.ok() ? done_ok : done_err)++;
                    if (done_ok + done_err == 50) loop.stop();
                });
                // Yield to nothing: all 50 are queued in one loop callback,
                // so the worker sees them in one or a few batches.
            }
            CHECK(committer.in_flight() > 0);
        });
        CHECK(committer.in_flight() == 0);
    }
    CHECK(done_ok == 50);
    CHECK(done_err == 0);
    CHECK_FALSE(wrong_thread);
    for (size_t i = 0; i < ids.size(); ++i) {
        auto m = s.load(ids[i]);
        REQUIRE(m);
        CHECK(m->recipients.size() == 1 + i % 3);
        CHECK(m->envelope.size == std::string("Subject: " + std::to_string(i) + "\n\nbody\n").size());
        CHECK(file_exists(s.body_path(ids[i])));
    }
    CHECK(s.due(::time(nullptr) + 1, 100).size() == 50);
}

TEST_CASE("queue committer: a failed commit reports the error and unlinks the body", "[queue]") {
    QueueTempDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;
    LoopFixture loop;

    // Too many recipients for one record of the commit log (a record holds
    // up to half of its 4 MiB): the write fails, nothing is queued.
    std::string id = new_queue_id();
    Message huge = sample_message(id);
    const std::string address = std::string(400, 'a') + "@example.org";
    huge.recipients.assign(6000, huge.recipients.front());
    for (auto& r : huge.recipients) r.address = address;
    std::string good = new_queue_id();
    int calls = 0;
    Status result_huge, result_good;
    {
        Committer committer(loop.base, s);
        loop.run([&] {
            auto body = s.create_body(id);
            REQUIRE(body.ok());
            write_body(*body, "x\n");
            committer.submit(std::move(huge), std::move(*body), [&](const Status& st) {
                result_huge = st;
                if (++calls == 1) loop.stop();
            });
        });
        REQUIRE(calls == 1);
        CHECK_FALSE(result_huge.ok());
        CHECK_THAT(result_huge.message(), Catch::Contains("too large for the commit log"));
        CHECK_FALSE(file_exists(s.body_path(id)));

        // The committer keeps working after a failure; the destructor runs
        // a completion the loop has not run yet.
        auto body = s.create_body(good);
        REQUIRE(body.ok());
        committer.submit(sample_message(good), std::move(*body), [&](const Status& st) {
            result_good = st;
            ++calls;
        });
    }
    CHECK(calls == 2);
    CHECK(result_good.ok());
    CHECK(s.load(good));
    CHECK_FALSE(s.load(id));
}

TEST_CASE("queue committer: an id already queued keeps its stored message", "[queue]") {
    QueueTempDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;
    LoopFixture loop;
    std::string id = new_queue_id();
    Message first = sample_message(id);
    first.envelope.sender = "first@example.org";
    REQUIRE(s.insert({first}).ok());
    Message second = sample_message(id);
    second.envelope.sender = "second@example.org";
    second.small_body = "Subject: x\n\nsecond\n";
    Status result;
    {
        Committer committer(loop.base, s);
        committer.submit(std::move(second), Fd(), [&](const Status& st) { result = st; });
        REQUIRE(event_base_dispatch(loop.base) == 1);
    }
    // Acknowledged (it is in the log before LMDB is asked); the store drops
    // the logged copy and says so, and the first message is untouched.
    CHECK(result.ok());
    auto m = s.load(id);
    REQUIRE(m);
    CHECK(m->envelope.sender == "first@example.org");
    CHECK(s.list_all().size() == 1);
}

TEST_CASE("queue committer: the loop keeps running until every Done ran", "[queue]") {
    QueueTempDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;
    LoopFixture loop;
    Committer committer(loop.base, s);
    int done = 0;
    // A Done that submits again (like a session sending its next message).
    std::function<void(int)> submit_one = [&](int left) {
        std::string id = new_queue_id();
        auto body = s.create_body(id);
        REQUIRE(body.ok());
        committer.submit(sample_message(id), std::move(*body), [&, left](const Status& st) {
            CHECK(st.ok());
            ++done;
            if (left > 1) submit_one(left - 1);
        });
    };
    submit_one(3);
    submit_one(2);
    // No other event exists: dispatch returns only once nothing is in flight.
    REQUIRE(event_base_dispatch(loop.base) == 1);  // 1: no events left
    CHECK(done == 5);
    CHECK(committer.in_flight() == 0);
    // Done means logged; LMDB has them once the store thread got to them
    // (at the latest when the Committer ends).
    for (int i = 0; i < 500 && s.list_all().size() < 5; ++i) ::usleep(10 * 1000);
    CHECK(s.list_all().size() == 5);
}

TEST_CASE("queue committer: a bad submission fails alone", "[queue]") {
    QueueTempDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;
    LoopFixture loop;
    std::vector<std::string> good;
    int ok = 0, failed = 0;
    {
        Committer committer(loop.base, s);
        auto count = [&](const Status& st) { (st.ok() ? ok : failed)++; };
        // Six in one go, so the batch may take the syncfs path.
        for (int i = 0; i < 4; ++i) {
            good.push_back(new_queue_id());
            auto body = s.create_body(good.back());
            REQUIRE(body.ok());
            committer.submit(sample_message(good.back()), std::move(*body), count);
        }
        committer.submit(sample_message("../../etc/pas"), Fd(), count);  // invalid id
        committer.submit(sample_message(new_queue_id()), Fd(), count);   // no body
        REQUIRE(event_base_dispatch(loop.base) == 1);
    }
    CHECK(ok == 4);
    CHECK(failed == 2);
    for (const auto& id : good) CHECK(s.load(id));
    CHECK(s.list_all().size() == 4);
}

TEST_CASE("queue committer: bodies in one or several hash directories, one batch", "[queue]") {
    QueueTempDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;
    LoopFixture loop;
    int ok = 0, failed = 0;
    std::vector<std::string> committed;
    {
        Committer committer(loop.base, s);
        auto count = [&](const Status& st) { (st.ok() ? ok : failed)++; };
        // Ids made in a row by one process share a hash directory (the
        // committer fsyncs it once for all of them) ...
        // (a second try, should the first have crossed the ~65 ms boundary
        // where the directory changes: the next one is far away).
        for (int attempt = 0; attempt < 2; ++attempt) {
            committed.clear();
            for (int i = 0; i < 5; ++i) committed.push_back(new_queue_id());
            if (committed.front().substr(12) == committed.back().substr(12)) break;
        }
        CHECK(committed.front().substr(12) == committed.back().substr(12));
        // ... and a later id may be in another one.
        ::usleep(70 * 1000);
        committed.push_back(new_queue_id());
        for (const auto& id : committed) {
            auto body = s.create_body(id);
            REQUIRE(body.ok());
            write_body(*body, "Subject: " + id + "\n\nbody\n");
            committer.submit(sample_message(id), std::move(*body), count);
        }
        // An abandoned body (no submit): nothing waits for it.
        REQUIRE(s.create_body(new_queue_id()).ok());
        REQUIRE(event_base_dispatch(loop.base) == 1);  // returns once every Done ran
    }
    CHECK(ok == 6);
    CHECK(failed == 0);
    for (const auto& id : committed) CHECK(s.load(id));
    CHECK(s.list_all().size() == 6);
}

TEST_CASE("queue: spare body files are renamed into place, leftovers of dead processes removed", "[queue]") {
    char tmpl[] = "/tmp/tern-spare-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    std::string spare_dir = dir + "/spare";
    REQUIRE(::mkdir(spare_dir.c_str(), 0700) == 0);
    // A spare of a process that no longer exists (pid far above pid_max) and
    // a file that is not a spare.
    { std::ofstream(spare_dir + "/999999999.1") << ""; }
    { std::ofstream(spare_dir + "/notes") << ""; }
    {
        auto spares = tern::queue::SpareFiles::start(spare_dir, 4);
        REQUIRE(spares);
        CHECK_FALSE(std::filesystem::exists(spare_dir + "/999999999.1"));
        CHECK(std::filesystem::exists(spare_dir + "/notes"));
        // The helper thread fills the pool: wait for 4 (bounded).
        auto count = [&] {
            size_t n = 0;
            for (auto& e : std::filesystem::directory_iterator(spare_dir)) n += e.path().filename() != "notes";
            return n;
        };
        for (int i = 0; i < 500 && count() < 4; ++i) ::usleep(2000);
        CHECK(count() == 4);
        Fd fd = (*spares)->take(dir + "/body1");
        REQUIRE(fd);
        CHECK(::write(fd.get(), "abc", 3) == 3);
        CHECK(std::filesystem::file_size(dir + "/body1") == 3);
        // Never replaces an existing file: the caller creates it instead.
        Fd again = (*spares)->take(dir + "/body1");
        CHECK_FALSE(again);
        CHECK(std::filesystem::file_size(dir + "/body1") == 3);
    }
    // Stopping removes the spares not taken.
    size_t left = 0;
    for (auto& e : std::filesystem::directory_iterator(spare_dir)) left += e.path().filename() != "notes";
    CHECK(left == 0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("queue: finished bodies are recycled as spares, unless open elsewhere", "[queue]") {
    char tmpl[] = "/tmp/tern-recycle-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    std::string spare_dir = dir + "/spare";
    REQUIRE(::mkdir(spare_dir.c_str(), 0700) == 0);
    auto make_body = [&](const std::string& name, std::string_view text) {
        std::ofstream(dir + "/" + name) << text;
        struct stat st {};
        REQUIRE(::stat((dir + "/" + name).c_str(), &st) == 0);
        return st.st_ino;
    };
    auto inode_of = [](const Fd& fd) {
        struct stat st {};
        REQUIRE(::fstat(fd.get(), &st) == 0);
        return std::make_pair(st.st_ino, st.st_size);
    };
    auto spares = SpareFiles::start(spare_dir, 1);
    REQUIRE(spares);
    // The pool (of one) is full once the helper thread made its first spare;
    // then only a take wakes it, so no body recycled below is claimed before
    // the test looks at it.  Bounded: 2,000 x 1 ms.
    const std::string first_spare = spare_dir + "/" + std::to_string(::getpid()) + ".1";
    for (int i = 0; i < 2000 && !std::filesystem::exists(first_spare); ++i) ::usleep(1000);
    REQUIRE(std::filesystem::exists(first_spare));
    // Takes spares (each take makes the helper thread refill the pool) until
    // `recycled` was claimed and one more spare was taken; returns the
    // (inode, size) of every spare taken.  Bounded by time, not by a count of
    // takes: the helper looks for recycled bodies only every 200 ms.
    int n = 0;
    auto take_until_claimed = [&](const std::string& recycled) {
        std::set<std::pair<ino_t, off_t>> taken;
        int after = 0;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (after < 2 && std::chrono::steady_clock::now() < deadline) {
            bool claimed = !std::filesystem::exists(recycled);
            if (Fd fd = (*spares)->take(dir + "/n" + std::to_string(++n))) {
                taken.insert(inode_of(fd));
                if (claimed) ++after;
            } else {
                ::usleep(2000);
            }
        }
        CHECK(after == 2);
        return taken;
    };

    SECTION("a body open nowhere else comes back as the same inode, its blocks kept for the next body") {
        ino_t ino = make_body("b1", "old content");
        REQUIRE(SpareFiles::recycle(spare_dir, dir + "/b1", "ID1"));
        CHECK_FALSE(std::filesystem::exists(dir + "/b1"));
        CHECK(std::filesystem::exists(spare_dir + "/r.ID1"));
        auto taken = take_until_claimed(spare_dir + "/r.ID1");
        // Not truncated (that would free its block): the writer overwrites
        // from offset 0 and cuts the file at its own end.
        CHECK(taken.count(std::make_pair(ino, off_t{11})) == 1);
    }
    SECTION("a body someone still reads is left to them and removed") {
        ino_t ino = make_body("b2", "second");
        Fd reader(::open((dir + "/b2").c_str(), O_RDONLY | O_CLOEXEC));
        REQUIRE(reader);
        REQUIRE(SpareFiles::recycle(spare_dir, dir + "/b2", "ID2"));
        auto taken = take_until_claimed(spare_dir + "/r.ID2");
        for (auto& [i, size] : taken) CHECK(i != ino);
        char buf[16] = {};
        CHECK(::pread(reader.get(), buf, sizeof buf, 0) == 6);
        CHECK(std::string(buf) == "second");
        struct stat st {};
        REQUIRE(::fstat(reader.get(), &st) == 0);
        CHECK(st.st_nlink == 0);  // unlinked, not reused
    }
    SECTION("large bodies and missing ones are not recycled") {
        make_body("big", std::string(300 * 1024, 'x'));
        CHECK_FALSE(SpareFiles::recycle(spare_dir, dir + "/big", "ID3"));
        CHECK(std::filesystem::exists(dir + "/big"));
        CHECK_FALSE(SpareFiles::recycle(spare_dir, dir + "/none", "ID4"));
    }
    spares->reset();
    std::filesystem::remove_all(dir);
}

TEST_CASE("queue: how many recycled bodies may wait depends on their size", "[queue]") {
    char tmpl[] = "/tmp/tern-recycle-cap-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    std::string spare_dir = dir + "/spare";
    REQUIRE(::mkdir(spare_dir.c_str(), 0700) == 0);
    // No smtpd claims them here.  The count is refreshed every 32 calls, so
    // the limits hold within 2 x 32 (the first refresh may have counted
    // another directory of this process).
    auto recycle_all = [&](const std::string& prefix, int n, size_t size) {
        int done = 0;
        for (int i = 0; i < n; ++i) {
            std::string name = prefix + std::to_string(i);
            std::ofstream(dir + "/" + name) << std::string(size, 'x');
            if (SpareFiles::recycle(spare_dir, dir + "/" + name, name)) ++done;
            else std::filesystem::remove(dir + "/" + name);
        }
        return done;
    };
    // Small bodies (up to 16 KiB): far more than 160 may wait.
    CHECK(recycle_all("S", 400, 2048) == 400);
    // Larger ones only while fewer than 128 wait: none now.
    CHECK(recycle_all("L", 100, 20 * 1024) <= 64);
    std::filesystem::remove_all(spare_dir);
    REQUIRE(::mkdir(spare_dir.c_str(), 0700) == 0);
    int large = recycle_all("M", 300, 20 * 1024);
    CHECK(large >= 128);
    CHECK(large <= 128 + 64);
    std::filesystem::remove_all(dir);
}

namespace {
// The whole content of an open fd, through a fresh open of it (offset 0).
std::string read_all(int fd) {
    auto text = tern::sys::read_file("/proc/self/fd/" + std::to_string(fd));
    REQUIRE(text.ok());
    return *text;
}
}  // namespace

TEST_CASE("queue committer: a small body travels in the records, a large one in its synced file", "[queue]") {
    QueueTempDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;
    LoopFixture loop;
    const std::string small_text = "Subject: small\n\n" + std::string(1000, 's') + "\n";
    const std::string large_text = "Subject: large\n\n" + std::string(kSmallBodyMax, 'l') + "\n";
    const std::string small_id = new_queue_id(), large_id = new_queue_id();
    int ok = 0;
    {
        Committer committer(loop.base, s);
        for (const auto& [id, text] : {std::pair{small_id, small_text}, std::pair{large_id, large_text}}) {
            auto body = s.create_body(id);
            REQUIRE(body.ok());
            write_body(*body, text);
            Message m = sample_message(id);
            m.envelope.size = 0;  // filled in from the body
            committer.submit(std::move(m), std::move(*body), [&](const Status& st) { ok += st.ok(); });
        }
        REQUIRE(event_base_dispatch(loop.base) == 1);
    }
    REQUIRE(ok == 2);
    CHECK(s.load(small_id)->envelope.size == small_text.size());
    CHECK(s.load(large_id)->envelope.size == large_text.size());
    // The small body is read from the records even when its file is gone
    // (a crash may lose that file: it was never synced) ...
    REQUIRE(::unlink(s.body_path(small_id).c_str()) == 0);
    auto small = s.open_body(small_id);
    REQUIRE(small.ok());
    CHECK(read_all(small->get()) == small_text);
    struct stat st {};
    REQUIRE(::fstat(small->get(), &st) == 0);
    CHECK(size_t(st.st_size) == small_text.size());
    CHECK(::write(small->get(), "x", 1) < 0);  // sealed: nobody changes a queued message
    auto small_bytes = s.small_body(small_id);
    REQUIRE(small_bytes.ok());
    REQUIRE(small_bytes->has_value());
    CHECK(**small_bytes == small_text);
    // ... the large one from its file.
    auto large_bytes = s.small_body(large_id);
    REQUIRE(large_bytes.ok());
    CHECK_FALSE(large_bytes->has_value());
    auto large = s.open_body(large_id);
    REQUIRE(large.ok());
    CHECK(read_all(large->get()) == large_text);
    // Removal takes the stored body with the records.
    REQUIRE(s.remove(small_id).ok());
    CHECK_FALSE(s.open_body(small_id).ok());
    REQUIRE(s.remove(large_id).ok());
}

TEST_CASE("queue committer: a body submitted in memory never becomes a file", "[queue]") {
    QueueTempDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;
    LoopFixture loop;
    const std::string text = "Subject: in memory\n\n" + std::string(800, 'm') + "\n";
    const std::string id = new_queue_id(), too_big = new_queue_id(), bad_id = "../../etc/pas";
    Status result, result_too_big, result_bad_id;
    {
        Committer committer(loop.base, s);
        Message m = sample_message(id);
        m.envelope.size = 0;  // filled in from the body
        m.small_body = text;
        committer.submit(std::move(m), Fd(), [&](const Status& st) { result = st; });
        Message big = sample_message(too_big);
        big.small_body.assign(kSmallBodyMax + 1, 'b');
        committer.submit(std::move(big), Fd(), [&](const Status& st) { result_too_big = st; });
        Message bad = sample_message(bad_id);
        bad.small_body = text;
        committer.submit(std::move(bad), Fd(), [&](const Status& st) { result_bad_id = st; });
        REQUIRE(event_base_dispatch(loop.base) == 1);
    }
    REQUIRE(result.ok());
    CHECK_FALSE(result_too_big.ok());
    CHECK_FALSE(result_bad_id.ok());
    CHECK_FALSE(s.load(too_big));
    CHECK(s.list_all().size() == 1);
    CHECK(s.load(id)->envelope.size == text.size());
    CHECK_FALSE(file_exists(s.body_path(id)));
    auto body = s.open_body(id);
    REQUIRE(body.ok());
    CHECK(read_all(body->get()) == text);
    // Removal has no file to unlink or recycle: a file of that name, if one
    // were there, is left to the orphan sweep (it belongs to nobody).
    REQUIRE(s.remove(id).ok());
    CHECK_FALSE(s.open_body(id).ok());
    CHECK(s.list_all().empty());
}
