// Unit tests for lib/mailq: the mailq listing format.
#include <catch2/catch.hpp>

#include "lib/mailq/mailq.hpp"

using namespace tern;

namespace {

queue::Message message(const std::string& id, bool held, int64_t next_try) {
    queue::Message m;
    m.envelope.id = id;
    m.envelope.sender = "alice@example.org";
    m.envelope.size = 2048;
    m.envelope.arrival_us = int64_t{1700000000} * 1000000;
    m.held = held;
    queue::Recipient pending;
    pending.address = "bob@example.org";
    pending.next_try = next_try;
    pending.last_error = "mailbox full\nInjected: line";
    queue::Recipient done;
    done.index = 1;
    done.address = "carol@example.org";
    done.state = queue::RecipientState::Delivered;
    m.recipients = {pending, done};
    return m;
}

}  // namespace

TEST_CASE("mailq: empty queue", "[mailq]") { CHECK(mailq::format_listing({}, 0) == "Mail queue is empty\n"); }

TEST_CASE("mailq: marks, pending recipients and errors", "[mailq]") {
    std::string out = mailq::format_listing(
        {message("0000000000000A", false, 100), message("0000000000000B", true, 100),
         message("0000000000000C", false, 5000)},
        1000);
    CHECK(out.find("0000000000000A*     2048 ") != std::string::npos);  // due now
    CHECK(out.find("0000000000000B!     2048 ") != std::string::npos);  // held
    CHECK(out.find("0000000000000C      2048 ") != std::string::npos);  // waiting for retry
    CHECK(out.find("(mailbox full?Injected: line)") != std::string::npos);
    CHECK(out.find("bob@example.org") != std::string::npos);
    CHECK(out.find("carol@example.org") == std::string::npos);  // delivered: not listed
    CHECK(out.find("-- 6 Kbytes in 3 Requests.") != std::string::npos);
}

TEST_CASE("mailq: details show envelope, recipients and headers", "[mailq]") {
    std::string out = mailq::format_details(message("0000000000000A", true, 100), "Subject: hi\nTo: bob\n");
    CHECK(out.find("sender: <alice@example.org>") != std::string::npos);
    CHECK(out.find("held: yes") != std::string::npos);
    CHECK(out.find("recipient: <carol@example.org> delivered") != std::string::npos);
    CHECK(out.find("recipient: <bob@example.org> pending") != std::string::npos);
    CHECK(out.find("\nSubject: hi\nTo: bob\n") != std::string::npos);
}
