// GroupCommit: the Maildir deliveries of one batch of requests, made
// durable together (docs/local-delivery.md, "Group commit").
//
// deliver_maildir() writes each message into its folder's tmp/ and stages
// it here instead of committing it alone.  commit() then
//   1. fsyncs every staged file, all at once on the SyncPool;
//   2. per owner (one switch of the effective ids) and per folder, moves the
//      folder's files into new/ and indexes them in one LMDB transaction;
//   3. fsyncs each changed directory and syncs each index, all at once.
// Only then is a delivery's result known, and only then does the agent
// answer qmgr: the durability of a lone commit (file, directory entry and
// index record on disk before "delivered"), with ~3 rounds of syncs per
// batch instead of ~4 per message.
//
// Writers are created, staged, published and destroyed with their owner's
// privileges (a writer dropped unpublished removes its tmp file).  The
// pool's jobs are fsyncs on descriptors and directories opened before, which
// need none.
#pragma once

#include <memory>
#include <vector>

#include "lib/mailstore/mailstore.hpp"
#include "lib/sys/sync_pool.hpp"
#include "local-delivery/identity.hpp"
#include "local-delivery/result.hpp"

namespace tern::local {

class GroupCommit {
public:
    explicit GroupCommit(sys::SyncPool& pool) : pool_(pool) {}
    ~GroupCommit();
    GroupCommit(const GroupCommit&) = delete;
    GroupCommit& operator=(const GroupCommit&) = delete;

    // A staged writer (MessageWriter::stage() done) of store's, written as
    // owner into the Maildir dir; returns its ticket for result().
    size_t add(const Identity& owner, std::shared_ptr<mailstore::Store> store,
               std::unique_ptr<mailstore::MessageWriter> writer, const std::string& dir);
    size_t size() const { return staged_.size(); }

    void commit();
    // After commit(): the delivery's outcome, as deliver_maildir reports it.
    DeliveryResult result(size_t ticket) const;

private:
    struct Staged {
        Identity owner;
        std::shared_ptr<mailstore::Store> store;
        std::unique_ptr<mailstore::MessageWriter> writer;
        std::string dir;
        Status failure;  // a step before publishing failed
    };
    // Runs fn as each owner in turn, with that owner's staged entries.
    template <typename Fn>
    void as_each_owner(Fn fn);

    sys::SyncPool& pool_;
    std::vector<Staged> staged_;
    bool committed_ = false;
};

}  // namespace tern::local
