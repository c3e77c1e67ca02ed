// The packed view: a copy of what a session's view holds (UID, flags,
// keywords, modseq, CRLF size) for every record of a folder, in chunks of
// consecutive UIDs, so that loading the view of a 100,000-message folder
// reads ~200 values of ~15 KB (each one contiguous run of overflow pages)
// instead of every `msgs` record, which lie among the cached strings'
// pages all over a file of over 100 MB.  Kept by every writer in the
// transaction that changes the records (ViewDelta), so it never disagrees
// with them; an index without it (an older tern's) gets it built once.
//
//   view   chunk number (u32 big-endian, UID / kUidsPerChunk) →
//          version byte + PackedEntry × n, ascending UIDs
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <optional>
#include <vector>

#include "lib/core/result.hpp"
#include "lib/lmdb/lmdb.hpp"
#include "lib/mailstore/index_records.hpp"

namespace tern::mailstore {

// UIDs per chunk: a flag change or a delivery rewrites one chunk (at most
// this many × 29 bytes); a view load reads uidnext / this many chunks.
constexpr uint32_t kUidsPerChunk = 512;

struct PackedEntry {
    uint32_t uid = 0;
    uint8_t flags = 0;
    uint64_t keywords = 0, modseq = 0, crlf_size = 0;
    bool operator==(const PackedEntry&) const = default;
};

PackedEntry packed_entry(uint32_t uid, const MessageRecord& r);

// The record changes of one write transaction, applied to the chunks by
// flush() before the transaction commits.  Made inside the transaction's
// function, so that a retried transaction starts from nothing.
class ViewDelta {
public:
    void put(uint32_t uid, const MessageRecord& r) { changes_.emplace_back(uid, packed_entry(uid, r)); }
    void erase(uint32_t uid) { changes_.emplace_back(uid, std::nullopt); }
    bool empty() const { return changes_.empty(); }
    void reserve(size_t changes) { changes_.reserve(changes); }
    // A chunk that does not decode is dropped and damaged() is set: the
    // view must then not be stamped valid (the records are what counts;
    // the next open rebuilds the chunks from them).
    Status flush(lmdb::Txn& txn, lmdb::Dbi view);
    bool damaged() const { return damaged_; }
    // After flush(): the changes by ascending UID, the last of each UID
    // (nullopt: the record was erased).
    const std::vector<std::pair<uint32_t, std::optional<PackedEntry>>>& changes() const { return changes_; }

private:
    bool damaged_ = false;
    // In the order made; for a UID changed twice the later change counts.
    std::vector<std::pair<uint32_t, std::optional<PackedEntry>>> changes_;
};

// How for_each_packed() asks the kernel for the chunks' pages.
enum class Prefetch {
    All,        // all chunks at once before the walk: a cold file is read in a
                // few large requests rather than a fault per page
    EachChunk,  // each chunk as the walk reaches it (a walk that usually stops
                // in the first, with read-ahead off)
    None,       // the pages are expected in memory
};

// Calls fn for every entry in UID order until it returns false.  A
// corrupt chunk is an error.
Status for_each_packed(const lmdb::Txn& txn, lmdb::Dbi view, Prefetch prefetch,
                       const std::function<bool(const PackedEntry&)>& fn);

// Asks the kernel to read all chunks now (asynchronously): only the view's
// tree pages are read before this returns.
Status prefetch_packed(const lmdb::Txn& txn, lmdb::Dbi view);

// The first message without \Seen: its UID (0: none) and how many
// records come before it (its sequence number less one; with uid 0, all
// of them).  Kept in the folder's header so that SELECT's [UNSEEN n]
// reads no chunk.
struct FirstUnseen {
    uint32_t uid = 0;
    uint64_t below = 0;
    bool operator==(const FirstUnseen&) const = default;
};

// Walks the chunks from the entry at or after from_uid, `below` being the
// number of records before from_uid (0 and 0: the whole view).
Result<FirstUnseen> find_first_unseen(const lmdb::Txn& txn, lmdb::Dbi view, uint32_t from_uid, uint64_t below);

// The first unseen message after a transaction, from the one before it
// (`was`) and the transaction's changes (flushed, so the chunks are the
// new state): an expunge below it moves the count, a change of it walks
// forward to the next unseen, new messages count from `records` (the
// number of records now) when none was unseen; a message below it that
// lost \Seen makes a walk from the start.  old_uidnext: UIDNEXT before
// the transaction.
Result<FirstUnseen> update_first_unseen(const lmdb::Txn& txn, lmdb::Dbi view, FirstUnseen was, const ViewDelta& delta,
                                        uint32_t old_uidnext, uint64_t records);

// Replaces the chunks with ones built from the `msgs` records.
Status rebuild_packed(lmdb::Txn& txn, lmdb::Dbi msgs, lmdb::Dbi view);

}  // namespace tern::mailstore
