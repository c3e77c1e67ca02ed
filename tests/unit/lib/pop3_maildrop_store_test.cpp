// lib/pop3's Maildrop over the real Maildir + LMDB store, beside an "IMAP"
// Mailbox handle on the same INBOX: UIDL consistent with IMAP's UIDVALIDITY
// and UIDs, LIST sizes equal to the store's CRLF sizes, and a POP3 session
// that survives an IMAP expunge and a delivery made during it.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "lib/mailstore/maildir_store.hpp"
#include "lib/maildir/maildir.hpp"
#include "lib/pop3/maildrop.hpp"

using namespace tern;
using namespace tern::mailstore;
using tern::pop3::Maildrop;
namespace fs = std::filesystem;

namespace {

struct TempMaildir {
    fs::path path;
    TempMaildir() {
        char tmpl[] = "/tmp/tern-pop3-store-XXXXXX";
        path = ::mkdtemp(tmpl);
        path /= "Maildir";
    }
    ~TempMaildir() { fs::remove_all(path.parent_path()); }
};

std::unique_ptr<Store> open_store(const TempMaildir& t) {
    MaildirOptions o;
    o.root = t.path.string();
    auto s = open_maildir_store(o);
    REQUIRE(s);
    return std::move(*s);
}

std::unique_ptr<Mailbox> inbox(Store& store) {
    auto mb = store.open(std::string(kInbox));
    REQUIRE(mb);
    return std::move(*mb);
}

uint32_t append(Mailbox& mb, std::string_view data) {
    auto w = mb.append();
    REQUIRE(w);
    REQUIRE((*w)->write(data));
    auto uid = (*w)->commit(Flags{});
    REQUIRE(uid);
    return *uid;
}

Maildrop pop3_session(Store& store) {
    auto drop = Maildrop::load(inbox(store));
    REQUIRE(drop);
    return std::move(*drop);
}

}  // namespace

TEST_CASE("pop3 maildrop on the Maildir store: UIDL and sizes agree with IMAP's view", "[pop3]") {
    TempMaildir dir;
    auto imap_store = open_store(dir);
    auto imap = inbox(*imap_store);
    const std::string bodies[] = {"Subject: a\r\n\r\none\r\n", "Subject: b\n\n.dot\nline\n", "Subject: c\r\n\r\nx"};
    for (const auto& b : bodies) append(*imap, b);
    REQUIRE(imap->refresh());
    REQUIRE(imap->view().size() == 3);

    auto pop_store = open_store(dir);
    Maildrop drop = pop3_session(*pop_store);
    REQUIRE(drop.count() == 3);
    uint32_t uidvalidity = imap->status().uidvalidity;
    for (uint32_t n = 1; n <= 3; ++n) {
        INFO("message " << n);
        const auto& m = drop.at(n);
        uint32_t uid = imap->view()[n - 1].uid;
        CHECK(m.uid == uid);
        CHECK(m.unique_id == imap->unique_id(uid));
        char want[32];
        std::snprintf(want, sizeof want, "%08X%08X", uidvalidity, uid);
        CHECK(m.unique_id == want);  // UIDVALIDITY + UID: what an IMAP client sees
        // RFC 1939 7: 1-70 characters in 0x21..0x7E.
        CHECK(m.unique_id.size() <= 70);
        for (char c : m.unique_id) CHECK((c > 0x20 && c < 0x7f));
        std::string lf;
        for (char c : bodies[n - 1])
            if (c != '\r') lf.push_back(c);
        auto body = drop.open(n);
        REQUIRE(body);
        CHECK((*body)->bytes() == lf);
        size_t newlines = static_cast<size_t>(std::count(lf.begin(), lf.end(), '\n'));
        CHECK(m.octets == lf.size() + newlines);
    }
    // Another session sees the same UIDLs.
    auto other_store = open_store(dir);
    Maildrop again = pop3_session(*other_store);
    for (uint32_t n = 1; n <= 3; ++n) CHECK(again.at(n).unique_id == drop.at(n).unique_id);
}

TEST_CASE("pop3 maildrop on the Maildir store: IMAP expunge and a delivery during the session", "[pop3]") {
    TempMaildir dir;
    auto imap_store = open_store(dir);
    auto imap = inbox(*imap_store);
    uint32_t u1 = append(*imap, "Subject: 1\n\none\n");
    uint32_t u2 = append(*imap, "Subject: 2\n\ntwo\n");
    uint32_t u3 = append(*imap, "Subject: 3\n\nthree\n");
    REQUIRE(imap->refresh());

    auto pop_store = open_store(dir);
    Maildrop drop = pop3_session(*pop_store);
    std::string uidl3 = drop.at(3).unique_id;

    // IMAP: STORE 2 +FLAGS \Deleted, EXPUNGE.
    Flags deleted;
    deleted.system = kDeleted;
    std::vector<uint32_t> two{u2};
    REQUIRE(imap->store_flags(two, FlagOp::Add, deleted));
    auto gone = imap->expunge();
    REQUIRE(gone);
    REQUIRE(gone->expunged_uids == two);
    // local-delivery: a new message into new/.
    auto w = maildir::MaildirWriter::create(dir.path.string());
    REQUIRE(w);
    REQUIRE(w->write("Subject: late\n\nlate\n"));
    REQUIRE(w->commit());

    CHECK(drop.count() == 3);  // numbering unchanged
    REQUIRE(drop.find(2));
    CHECK_FALSE(drop.open(2));  // RETR 2 → -ERR, no crash
    REQUIRE(drop.open(3));

    REQUIRE(drop.mark_deleted(1));
    REQUIRE(drop.mark_deleted(2));
    drop.mark_retrieved(3);
    auto r = drop.update();
    REQUIRE(r);
    CHECK(r->deleted == 1);
    CHECK(r->gone == 1);

    REQUIRE(imap->refresh());
    std::vector<uint32_t> left;
    for (const auto& e : imap->view()) left.push_back(e.uid);
    REQUIRE(left.size() == 2);  // 3 and the late one
    CHECK(left[0] == u3);
    CHECK(left[1] > u3);
    CHECK(imap->entry(u3)->flags == kSeen);
    CHECK(imap->seq_of(u1) == 0);

    auto next_store = open_store(dir);
    Maildrop next = pop3_session(*next_store);
    REQUIRE(next.count() == 2);
    CHECK(next.at(1).unique_id == uidl3);
}
