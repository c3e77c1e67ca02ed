// A POP3 session's maildrop (RFC 1939 4-6): a snapshot of the user's INBOX
// taken at login, numbered 1..N, with the session's pending deletions.
//
// The numbering never moves during the session: mail delivered meanwhile
// is not seen (the next session sees it), and a message that an IMAP
// session expunges meanwhile keeps its number and answers an error when it
// is read.  Deletions only mark the snapshot; update() (the UPDATE state,
// after QUIT) applies them through the store's expunge, so a session that
// drops its connection deletes nothing.  UIDL strings come from the store's
// unique_id(), the same for every session and consistent with IMAP's
// UIDVALIDITY and UID (mailstore.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/core/result.hpp"
#include "lib/mailstore/mailstore.hpp"

namespace tern::pop3 {

class Maildrop {
public:
    struct Message {
        uint32_t uid = 0;
        uint64_t octets = 0;    // CRLF size: what RETR sends before dot-stuffing (RFC 1939 11)
        std::string unique_id;  // UIDL
        bool deleted = false;
        bool retrieved = false;  // RETR'd: flagged \Seen on update
    };

    struct Totals {
        uint32_t messages = 0;  // not marked deleted
        uint64_t octets = 0;
    };

    struct UpdateResult {
        size_t deleted = 0;  // messages that left the mailbox
        size_t gone = 0;     // marked, but already removed by someone else
    };

    // Takes the snapshot of `mailbox`'s current contents.
    static Result<Maildrop> load(std::unique_ptr<mailstore::Mailbox> mailbox);

    uint32_t count() const { return static_cast<uint32_t>(messages_.size()); }  // deleted ones included
    Totals totals() const;  // STAT
    // The message numbered msg (1-based); an error text for "-ERR" when it
    // does not exist or is marked deleted (RFC 1939 5).
    Result<const Message*> find(uint32_t msg) const;
    const Message& at(uint32_t msg) const { return messages_[msg - 1]; }

    Status mark_deleted(uint32_t msg);
    void mark_retrieved(uint32_t msg);
    size_t reset();  // RSET: unmarks every deletion; returns how many there were
    size_t marked() const;

    // The stored bytes (LF line ends); an error when the message went away.
    Result<std::unique_ptr<mailstore::MessageBody>> open(uint32_t msg);

    // RFC 1939 6: removes the messages marked deleted, flags the retrieved
    // ones \Seen.  Messages that arrived or went since the snapshot are
    // left alone.
    Result<UpdateResult> update();

private:
    explicit Maildrop(std::unique_ptr<mailstore::Mailbox> mailbox) : mailbox_(std::move(mailbox)) {}
    std::unique_ptr<mailstore::Mailbox> mailbox_;
    std::vector<Message> messages_;
};

}  // namespace tern::pop3
