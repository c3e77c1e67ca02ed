// Unit tests for lib/pop3/maildrop: the session snapshot over a mail store
// Mailbox.  An in-memory Mailbox stands in for the store, so the tests can
// deliver and expunge "from another session" at exact points.
#include <catch2/catch.hpp>

#include <map>

#include "lib/pop3/maildrop.hpp"

using namespace tern;
using namespace tern::mailstore;
using tern::pop3::Maildrop;

namespace {

struct Shared {  // the mailbox as other sessions and deliveries change it
    std::map<uint32_t, std::pair<std::string, uint8_t>> messages;  // uid → body, flags
    uint32_t next_uid = 1;
    uint32_t add(std::string body) {
        messages[next_uid] = {std::move(body), 0};
        return next_uid++;
    }
};

class FakeBody : public MessageBody {
public:
    explicit FakeBody(std::string b) : bytes_(std::move(b)) {}
    std::string_view bytes() const override { return bytes_; }
    int fd() const override { return -1; }

private:
    std::string bytes_;
};

class FakeMailbox : public Mailbox {
public:
    explicit FakeMailbox(Shared& shared) : shared_(shared) { sync(); }
    const std::string& name() const override { return name_; }
    MailboxStatus status() const override { return {}; }
    bool read_only() const override { return false; }
    std::span<const ViewEntry> view() const override { return view_; }
    const std::vector<std::string>& keywords() const override { return keywords_; }
    Result<Changes> refresh() override {
        ++refreshes;
        sync();
        return Changes{};
    }
    int notify_fd() const override { return -1; }
    Status for_each(std::span<const uint32_t> uids, uint32_t, const std::function<void(const MessageData&)>& fn) override {
        for (uint32_t uid : uids) {
            auto it = shared_.messages.find(uid);
            if (it == shared_.messages.end()) continue;
            MessageData d;
            d.uid = uid;
            d.size = it->second.first.size();
            d.crlf_size = d.size + static_cast<uint64_t>(std::count(it->second.first.begin(), it->second.first.end(), '\n'));
            fn(d);
        }
        return {};
    }
    Result<std::unique_ptr<MessageBody>> open_body(uint32_t uid) override {
        auto it = shared_.messages.find(uid);
        if (it == shared_.messages.end()) return Error{"no message with UID " + std::to_string(uid)};
        return std::unique_ptr<MessageBody>(new FakeBody(it->second.first));
    }
    Result<StoreResult> store_flags(std::span<const uint32_t> uids, FlagOp op, const Flags& flags,
                                    std::optional<uint64_t>) override {
        REQUIRE(op == FlagOp::Add);
        StoreResult r;
        for (uint32_t uid : uids) {
            REQUIRE(seq_of(uid) != 0);  // only UIDs in the view
            auto it = shared_.messages.find(uid);
            if (it == shared_.messages.end()) continue;
            it->second.second |= flags.system;
            r.changed.push_back(uid);
        }
        return r;
    }
    Result<Changes> expunge(std::optional<std::span<const uint32_t>> only) override {
        REQUIRE(only);  // POP3 never expunges what another client flagged
        Changes c;
        for (uint32_t uid : *only) {
            auto it = shared_.messages.find(uid);
            if (it == shared_.messages.end() || !(it->second.second & kDeleted)) continue;
            shared_.messages.erase(it);
            c.expunged_uids.push_back(uid);
        }
        sync();
        return c;
    }
    Result<std::unique_ptr<MessageWriter>> append() override { return Error{"not here"}; }
    Result<CopyResult> copy(std::span<const uint32_t>, const std::string&) override { return Error{"not here"}; }
    Result<CopyResult> move(std::span<const uint32_t>, const std::string&, Changes&) override {
        return Error{"not here"};
    }
    Result<std::vector<uint32_t>> vanished_since(uint64_t, bool&) override { return Error{"not here"}; }
    std::string unique_id(uint32_t uid) const override { return "00000001" + std::to_string(uid); }

    int refreshes = 0;

private:
    void sync() {
        view_.clear();
        for (const auto& [uid, m] : shared_.messages) view_.push_back(ViewEntry{uid, m.second, 0, 1});
    }
    Shared& shared_;
    std::string name_ = "INBOX";
    std::vector<ViewEntry> view_;
    std::vector<std::string> keywords_;
};

Maildrop load(Shared& shared) {
    auto drop = Maildrop::load(std::make_unique<FakeMailbox>(shared));
    REQUIRE(drop);
    return std::move(*drop);
}

}  // namespace

TEST_CASE("pop3 maildrop: numbering, CRLF sizes, UIDL from the store", "[pop3]") {
    Shared shared;
    shared.add("a\nb\n");      // 4 bytes, 6 with CRLF
    shared.add("Subject: x\n");  // 11, 12
    Maildrop drop = load(shared);
    CHECK(drop.count() == 2);
    CHECK(drop.totals().messages == 2);
    CHECK(drop.totals().octets == 18);
    REQUIRE(drop.find(1));
    CHECK((*drop.find(1))->octets == 6);
    CHECK((*drop.find(2))->unique_id == "000000012");
    CHECK(drop.find(3).message() == "no such message");
    CHECK(drop.find(0).message() == "no such message");
}

TEST_CASE("pop3 maildrop: DELE marks, RSET unmarks, nothing leaves before update", "[pop3]") {
    Shared shared;
    shared.add("one\n");
    shared.add("two\n");
    shared.add("three\n");
    {
        Maildrop drop = load(shared);
        REQUIRE(drop.mark_deleted(2));
        CHECK(drop.mark_deleted(2).message() == "message 2 is deleted");
        CHECK(drop.find(2).message() == "message 2 is deleted");
        CHECK(drop.open(2).message() == "message 2 is deleted");
        CHECK(drop.totals().messages == 2);
        CHECK(drop.reset() == 1);
        CHECK(drop.find(2));
        REQUIRE(drop.mark_deleted(1));
        // The session ends without QUIT: the snapshot goes, the mail stays.
    }
    CHECK(shared.messages.size() == 3);
}

TEST_CASE("pop3 maildrop: update removes the marked messages and flags the retrieved ones", "[pop3]") {
    Shared shared;
    uint32_t one = shared.add("one\n");
    uint32_t two = shared.add("two\n");
    uint32_t three = shared.add("three\n");
    Maildrop drop = load(shared);
    REQUIRE(drop.mark_deleted(1));
    REQUIRE(drop.mark_deleted(3));
    drop.mark_retrieved(2);
    auto r = drop.update();
    REQUIRE(r);
    CHECK(r->deleted == 2);
    CHECK(r->gone == 0);
    CHECK(shared.messages.count(one) == 0);
    CHECK(shared.messages.count(three) == 0);
    REQUIRE(shared.messages.count(two) == 1);
    CHECK(shared.messages[two].second == kSeen);
}

TEST_CASE("pop3 maildrop: a delivery during the session does not shift numbers and is not deleted", "[pop3]") {
    Shared shared;
    shared.add("one\n");
    shared.add("two\n");
    Maildrop drop = load(shared);
    uint32_t late = shared.add("late\n");
    CHECK(drop.count() == 2);
    CHECK(drop.find(3).message() == "no such message");
    REQUIRE(drop.mark_deleted(1));
    REQUIRE(drop.mark_deleted(2));
    auto r = drop.update();
    REQUIRE(r);
    CHECK(r->deleted == 2);
    REQUIRE(shared.messages.size() == 1);
    CHECK(shared.messages.count(late) == 1);
}

TEST_CASE("pop3 maildrop: a message expunged by another session answers an error, update skips it", "[pop3]") {
    Shared shared;
    shared.add("one\n");
    uint32_t two = shared.add("two\n");
    uint32_t three = shared.add("three\n");
    Maildrop drop = load(shared);
    shared.messages.erase(two);  // an IMAP EXPUNGE meanwhile
    CHECK(drop.count() == 3);
    CHECK(drop.find(2));  // still numbered
    auto body = drop.open(2);
    CHECK_FALSE(body);
    auto ok = drop.open(3);
    REQUIRE(ok);
    CHECK((*ok)->bytes() == "three\n");
    REQUIRE(drop.mark_deleted(2));
    REQUIRE(drop.mark_deleted(3));
    auto r = drop.update();
    REQUIRE(r);
    CHECK(r->deleted == 1);
    CHECK(r->gone == 1);
    CHECK(shared.messages.count(three) == 0);
    CHECK(shared.messages.size() == 1);
}

TEST_CASE("pop3 maildrop: a message another client flagged \\Deleted is not expunged by POP3", "[pop3]") {
    Shared shared;
    uint32_t one = shared.add("one\n");
    uint32_t two = shared.add("two\n");
    shared.messages[two].second = kDeleted;  // IMAP STORE +FLAGS \Deleted, no EXPUNGE yet
    Maildrop drop = load(shared);
    REQUIRE(drop.mark_deleted(1));
    REQUIRE(drop.update());
    CHECK(shared.messages.count(one) == 0);
    CHECK(shared.messages.count(two) == 1);
}
