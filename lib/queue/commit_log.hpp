// CommitLog: the write-ahead log of smtpd's group commit.
//
// An LMDB commit syncs twice (the data pages, then the meta page), and the
// 250 after DATA waited for both.  The Committer now writes each batch of
// accepted messages as one record of this log -- one write and one
// fdatasync -- answers 250 once that is done, and inserts the batch into
// LMDB on another thread afterwards, storing the record's sequence number in
// the same transaction (the checkpoint).  A process that dies in between
// leaves its log behind; the next Store::open (any queue user: the
// restarted smtpd, qmgr, mailctl) replays every record past the checkpoint
// (Store::recover_logs).  docs/queue.md, "Durability contract", has the
// whole rule.
//
//   <queue>/commitlog/<name>.log   one per live Committer, flock()ed by its owner
//
// The file is a ring of 4 KiB blocks, written in full when created so that
// a record is an overwrite (fdatasync then writes the data and nothing of
// the inode).  Block 0 is the header: magic and a random 64-bit nonce.  A
// record starts on a block: nonce, sequence number, length, CRC-32C, then
// records::encode_messages() of its batch.  Records are read back by
// scanning every block for a header with this file's nonce and a right
// CRC; the nonce keeps a message body that imitates a record header from
// ever being taken for one (the sender cannot know it), the CRC tells a
// torn write.  Space is reused only behind the checkpoint.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"
#include "lib/queue/queue.hpp"

namespace tern::queue {

class CommitLog {
public:
    static constexpr size_t kBlock = 4096;
    static constexpr size_t kDefaultSize = size_t{4} << 20;
    static constexpr size_t kHeaderSize = 24;  // a record's header

    // Makes a new log in <queue_directory>/commitlog/ (which must exist), `size`
    // bytes (a multiple of kBlock), written and synced, its entry synced,
    // and locked for as long as this object lives.
    static Result<std::unique_ptr<CommitLog>> create(const std::string& queue_directory,
                                                     size_t size = kDefaultSize);
    ~CommitLog();  // the file stays (recovery finds it) unless remove() ran
    CommitLog(const CommitLog&) = delete;
    CommitLog& operator=(const CommitLog&) = delete;

    // The file's name without ".log": the key of its checkpoint in the queue.
    const std::string& name() const { return name_; }

    // Writes messages[from..] -- as many as fit one record (a record holds
    // up to half the log), at least one -- and syncs the record.  When the
    // ring has no room before the oldest record not yet checkpointed it
    // waits for checkpointed(), up to kRoomWait.  Fails for a message larger
    // than a record, for a ring that stays full, and for a failed write or
    // sync (a record whose sync failed may still be replayed after a crash).
    // One record at a time keeps a large batch from waiting for room only
    // its own earlier records hold.  One thread at a time.
    struct Appended {
        uint64_t seq;  // the record's sequence number (1, 2, ...)
        size_t count;  // messages[from .. from+count) are in it
    };
    Result<Appended> append(const std::vector<const Message*>& messages, size_t from = 0);
    // Every record up to `seq` is in LMDB: its blocks may be reused.  Any thread.
    void checkpointed(uint64_t seq);
    // Whether every record appended is checkpointed.
    bool drained() const;
    // Deletes the file (and syncs the directory): for a clean end, once drained.
    Status remove();

    struct Record {
        uint64_t seq = 0;
        std::vector<Message> messages;
    };
    // The whole records of a log file with a sequence number above `after`,
    // in order.  A record whose CRC is right but whose content does not
    // decode is reported and skipped.
    static Result<std::vector<Record>> read(int fd, uint64_t after);

private:
    struct Span {
        uint64_t seq;
        size_t first, count;  // blocks
    };
    static constexpr std::chrono::seconds kRoomWait{10};

    CommitLog(std::string dir, std::string name, Fd fd, size_t blocks, uint64_t nonce);
    // One record, written but not synced; returns its sequence number.
    Result<uint64_t> write_record(const std::string& payload);
    // First block of a free run of `count` blocks, or 0; mutex held.
    size_t place(size_t count) const;

    std::string dir_, name_;
    Fd fd_;
    size_t blocks_;
    uint64_t nonce_;
    uint64_t next_seq_ = 1;
    size_t head_ = 1;              // where the next record goes, if it fits
    mutable std::mutex mutex_;
    std::condition_variable room_;  // checkpointed() freed blocks
    std::deque<Span> pending_;     // guarded by mutex_; appended, not checkpointed
    Fd direct_;                    // the file again, O_DIRECT; none where unsupported
    std::unique_ptr<char, decltype(&std::free)> buffer_{nullptr, &std::free};  // append()'s, block-aligned
    size_t buffer_size_ = 0;
};

}  // namespace tern::queue
