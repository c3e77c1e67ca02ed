// Unit tests for Store::apply (qmgr's batched bookkeeping): updates and
// removals of many messages in one transaction, per-change refusals that
// leave the rest committed, bodies unlinked only for committed removals.
#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "lib/queue/queue.hpp"

using namespace tern;
using namespace tern::queue;

namespace {

struct ApplyTempDir {
    std::string path;
    ApplyTempDir() {
        char tmpl[] = "/tmp/tern-apply-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~ApplyTempDir() { std::filesystem::remove_all(path); }
};

Message two_recipients(const std::string& id) {
    Message m;
    m.envelope.id = id;
    m.envelope.sender = "alice@example.org";
    m.envelope.arrival_us = 1700000000000000;
    for (int i = 0; i < 2; ++i) {
        Recipient r;
        r.address = "rcpt" + std::to_string(i) + "@example.net";
        m.recipients.push_back(r);
    }
    return m;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

TEST_CASE("queue store apply: updates and removals in one batch", "[queue]") {
    ApplyTempDir dir;
    auto store = Store::open(dir.path);
    REQUIRE(store.ok());
    Store& s = **store;

    std::string done = new_queue_id(), deferred = new_queue_id(), deleted = new_queue_id();
    for (const auto& id : {done, deferred, deleted}) REQUIRE(s.create_body(id).ok());
    REQUIRE(s.insert({two_recipients(done), two_recipients(deferred), two_recipients(deleted)}).ok());
    REQUIRE(s.remove(deleted).ok());  // the admin deleted it meanwhile

    auto d = s.load(deferred)->recipients;
    d[0].state = RecipientState::Delivered;
    d[1].attempts = 1;
    d[1].next_try = 4000000000;
    d[1].last_status = "4.2.2";
    Recipient stray;
    stray.index = 7;

    auto results = s.apply({Change{done, {}, true}, Change{deferred, d, false}, Change{deleted, d, false},
                            Change{deleted, {}, true}, Change{deferred, {stray}, false}});
    REQUIRE(results.size() == 5);
    CHECK(results[0].ok());
    CHECK(results[1].ok());
    CHECK_FALSE(results[2].ok());  // gone: refused alone
    CHECK_FALSE(results[3].ok());
    CHECK_FALSE(results[4].ok());  // unknown recipient: nothing of it written

    CHECK_FALSE(s.load(done));
    CHECK_FALSE(exists(s.body_path(done)));  // unlinked after the commit
    auto m = s.load(deferred);
    REQUIRE(m);
    CHECK(m->recipients[0].state == RecipientState::Delivered);
    CHECK(m->recipients[1].last_status == "4.2.2");
    CHECK(exists(s.body_path(deferred)));
    CHECK(s.next_due_time() == 4000000000);
    CHECK(s.due(3999999999, 10).empty());

    // An update then a removal of the same message, in order, in one batch.
    d[1].state = RecipientState::Delivered;
    results = s.apply({Change{deferred, {d[1]}, false}, Change{deferred, {}, true}});
    CHECK(results[0].ok());
    CHECK(results[1].ok());
    CHECK(s.list_all().empty());
    CHECK_FALSE(s.next_due_time());
    CHECK(s.apply({}).empty());
}
