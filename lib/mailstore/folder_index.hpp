// One folder's LMDB index (layout in index_records.hpp), shared by every
// Mailbox of this process that has the folder open: LMDB forbids opening
// one environment twice in a process (its locks are per process), and one
// imapd serves many sessions that may select the same folder.  The most
// recently used ones stay open after their last Mailbox closed.  The
// folder's header (IndexMeta::counts) is what SELECT reads.
//
// The folder index is also where the Maildir is reconciled (sync()) and
// where messages enter the folder (adopt()): both run inside an LMDB write
// transaction, which is a lock across processes, so two processes never
// assign the same UID or index the same file twice.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/result.hpp"
#include "lib/lmdb/lmdb.hpp"
#include "lib/mailstore/index_records.hpp"
#include "lib/mailstore/mailstore.hpp"
#include "lib/mailstore/root_hint.hpp"
#include "lib/mailstore/view_chunks.hpp"

namespace tern::mailstore {

// What SELECT and STATUS report about the records, kept in the folder's
// header (meta "counts") by every writer in the transaction that changes
// the records, so that neither walks them.  Stamped with the modseq and
// uidnext it was written with: a writer that does not keep it (an older
// tern) leaves a stamp that no longer matches, and the counts are rebuilt.
struct FolderCounts {
    uint64_t messages = 0, unseen = 0, deleted = 0;
    uint64_t crlf_size = 0;  // STATUS=SIZE
    uint64_t unclaimed = 0;  // records above recent_uid: \Recent for EXAMINE and STATUS
    bool operator==(const FolderCounts&) const = default;
};

struct IndexMeta {
    uint32_t uidvalidity = 0;
    uint32_t uidnext = 1;
    uint64_t modseq = 1;
    // cur/'s mtime when its listing last matched the records and was old
    // enough to trust (0: look at the listing).
    int64_t cur_mtime = 0;
    // cur/'s mtime as a move of delivered files from new/ left it (0:
    // none; cur_mtime is 0 meanwhile, so a tern without these fields lists
    // cur/).  Trusted without a listing until cur_dirty_since + 1 s, then
    // checked once: a change another tool made in the clock tick of the
    // move would not show in the mtime.
    int64_t cur_dirty_mtime = 0, cur_dirty_since = 0;
    uint64_t vanished_floor = 0;
    std::vector<std::string> keywords;
    // RFC 3501 2.3.2: the highest UID a session has claimed as \Recent.
    uint32_t recent_uid = 0;
    FolderCounts counts;
    bool counts_valid = false;  // false: counts unknown (rebuild_header())
    // Whether the packed view (view_chunks.hpp) matches the records: its
    // stamp (modseq, uidnext, record count) is the current one.  false: an
    // index of an older tern, or one a writer without it changed.
    bool view_valid = false;
    // The first unseen message (SELECT's [UNSEEN n]), kept with the packed
    // view: valid when its stamp (modseq, uidnext, record count) is the
    // current one.  uidnext_read: UIDNEXT as read, before this writer.
    FirstUnseen first_unseen;
    bool unseen_valid = false;
    uint32_t uidnext_read = 1;
    bool from_copy = false;  // read from the main database's copy (read_meta())
    // Writers keep `counts` with these as records come, go or change flags.
    void count_in(uint32_t uid, const MessageRecord& r);
    void count_out(uint32_t uid, const MessageRecord& r);
};

// A message entering a folder: a file already linked into the folder's
// tmp/ (tmp_name), with what the index records about it.
struct Incoming {
    std::string tmp_name;
    uint8_t flags = 0;
    std::vector<std::string> keywords;
    uint64_t size = 0, crlf_size = 0;
    int64_t internal_date = 0;
    int16_t date_offset = 0;
    ParsedCache cache;
    bool cached = true;  // false: cache empty, read the file at the first need
    // The file's base name in cur/ (before ",S="); "" = a fresh unique one.
    // A chosen base that exists already is not stored twice: adopt() leaves
    // the UID 0 and sets `earlier`.
    std::string base;
    bool earlier = false;
    // A delivery without flags goes to new/ (other Maildir readers see it
    // as new mail); the record already names the file as cur/ will have it
    // ("<base>:2,"), so sync()'s move to cur/ keeps its UID.
    bool into_new = false;
};

// SELECT's \Recent claim (RFC 3501 2.3.2) when sync() takes it: the UIDs
// from..upto (from == 0: none), `taken` messages.
struct RecentClaim {
    uint32_t from = 0, upto = 0;
    uint64_t taken = 0;
};

// The directories adopt() changed: each needs an fsync (with the index's
// sync_to_disk) before its messages are durable.
struct AdoptSyncs {
    bool cur = false;
    bool new_dir = false;
};

// What SELECT answers from a whole header (counts and first unseen valid)
// before any \Recent claim: FolderIndex::answerable_header()'s answer.
OpenAnswer answer_of(const IndexMeta& m);

class FolderIndex {
public:
    // dir: the folder's Maildir; index_path: the LMDB file.
    // defer_creation: the caller runs build_first() next, and a new index's
    // databases are created in its commit; other threads that open the
    // folder meanwhile wait for that.
    static Result<std::shared_ptr<FolderIndex>> open(const std::string& dir, const std::string& index_path,
                                                     bool defer_creation = false);
    ~FolderIndex();
    // Closes the indexes kept open after their last Mailbox closed: what a
    // new process starts with (tests of a cold index).
    static void drop_kept_open();
    // The header as the index file's last commit left it, read without
    // opening the environment (lmdb/raw_file.hpp): from the main
    // database's copy, when that commit wrote it.  nullopt: no index, or
    // not readable so.
    static std::optional<IndexMeta> peek_header(const std::string& dir, const std::string& index_path);
    // SELECT's answer for a folder whose index this process has not open (a
    // cold one): peek_header(), when it is whole and cur/ and new/ say it
    // is the folder's state, with no \Recent to claim; what open() would
    // then show, unless another process writes meanwhile or the one check
    // of a young listing (cur_known()) finds a change.
    static std::optional<IndexMeta> answerable_header(const std::string& dir, const std::string& index_path);

    const std::string& dir() const { return dir_; }
    const std::string& index_path() const { return index_path_; }
    lmdb::Env& env() { return *env_; }
    // env().write(), then the root hint of the committed state
    // (root_hint.hpp): every writer of the index commits through this.
    Status write(const std::function<Status(lmdb::Txn&)>& fn);
    lmdb::Dbi meta, msgs, names, cache, vanished, view;

    // The header as of txn: from the copy in the main database when the
    // last commit wrote it (a cold SELECT then reads no page of `meta`),
    // from `meta` otherwise (and always with use_copy false, or in a write
    // transaction).
    Result<IndexMeta> read_meta(const lmdb::Txn& txn, bool use_copy = true) const;
    // Writes the counts too when m.counts_valid (stamped with m's modseq and
    // uidnext), and applies `delta` (the transaction's record changes) to
    // the packed view first; the view is stamped when m.view_valid.
    Status write_meta(lmdb::Txn& txn, const IndexMeta& m, ViewDelta* delta = nullptr);
    // The copy of the header in the main database, as `meta` holds it now
    // (write_meta() ends with it): a commit without one makes the copy stale.
    Status write_header_copy(lmdb::Txn& txn);
    // Keeps `vanished` bounded (call after adding expunges to it, before
    // write_meta): past ~125,000 entries the oldest expunges (by modseq) are
    // forgotten down to 100,000 and m.vanished_floor raised to the newest
    // modseq forgotten, so that a QRESYNC from before it gets every known
    // UID that is gone instead (RFC 7162 3.2.5.2, imapd/folders.cpp).
    Status bound_vanished(lmdb::Txn& txn, IndexMeta& m);
    // Calls fn for the view entry of every record in UID order until it
    // returns false: from the packed view when m (read in txn) says it is
    // valid, from the records otherwise (also when a chunk turns out not
    // to decode: restart() is called first, fn then sees every record from
    // the start).  whole: the walk is expected to go to the end.
    Status for_each_entry(const lmdb::Txn& txn, const IndexMeta& m, bool whole,
                          const std::function<bool(const PackedEntry&)>& fn,
                          const std::function<void()>& restart) const;
    // Read-ahead of page faults in the index's map.  Off while SELECT reads
    // a few scattered pages: the kernel would read megabytes around each
    // fault of a cold index (read_ahead_kb); on for walks over the records.
    void read_ahead(bool on);
    // Read-ahead off for a scope of point reads: this machine's disk has
    // read_ahead_kb 8192, and each fault of a cold map would read 8 MB.
    class PointReads {
    public:
        explicit PointReads(FolderIndex& idx) : idx_(idx) { idx_.read_ahead(false); }
        ~PointReads() { idx_.read_ahead(true); }
        PointReads(const PointReads&) = delete;
        PointReads& operator=(const PointReads&) = delete;

    private:
        FolderIndex& idx_;
    };

    // Asks the kernel to read the packed view's pages now, without waiting
    // for them: a cold folder's view is then in memory when it is loaded.
    // Only once per opening of the index (and not again by a view load):
    // later the pages are in memory (this process or a writer read or
    // wrote them), and asking again costs a system call per chunk.
    void prefetch_view();
    // Asks the kernel for the root pages of `meta` (SELECT's header) and
    // `view` (its [UNSEEN n]) at once, when an existing index is opened:
    // on a cold index they are read side by side, not one after the other.
    void prefetch_roots(const lmdb::Txn& txn);
    // The root page numbers of `meta` and `view` (the empty ones left out).
    std::vector<size_t> root_pages(const lmdb::Txn& txn) const;

    // Counts the records and builds the packed view once, where they are
    // not valid (an index written before they existed, or by a writer that
    // did not keep them), and stores the result.
    Status rebuild_header();

    // Brings the index in line with new/ and cur/: moves new/ files to cur/,
    // indexes unknown files (parsing only those), records flag changes made
    // by renames and forgets removed files.  Cheap when nothing changed, and
    // when new/ holds only deliveries whose records name them already.
    // With `claim` (SELECT), the transaction that assigns the last new UIDs
    // also claims every record as \Recent (a folder's first SELECT: one
    // commit and sync fewer than a claim of its own); *claim says what it
    // took, nothing when no transaction assigned UIDs.
    Status sync(RecentClaim* claim = nullptr);
    // sync() for a folder's first SELECT with an early answer (see
    // EarlyAnswer): one write transaction from the listing to the commit,
    // `early` called once the listing is sorted and before any record is
    // written; `written`: the header committed.  false, with nothing
    // written and nothing answered, when it is not such a build (the
    // index has records already, the folder is empty or too big for one
    // transaction, or a file must be read to index it): sync() then does.
    Result<bool> build_first(RecentClaim* claim, const EarlyAnswer& early, IndexMeta& written);
    // A writer's own changes to cur/ (flag renames, removals, APPEND's
    // files), made under the writer lock, are recorded as a delivery's move
    // is (IndexMeta::cur_dirty_mtime), so that the next refresh() of every
    // session does not list cur/: cur_before() before the first change
    // (the mtime when cur/ is as the index says, 0 otherwise), cur_after()
    // once done, both in the transaction that writes m.
    int64_t cur_before(const IndexMeta& m) const;
    void cur_after(IndexMeta& m, int64_t before) const;
    // How many times this process listed the folder's cur/ (tests and
    // benchmarks: a delivery must not cost a listing of the whole folder).
    uint64_t cur_listings() const { return cur_listings_; }

    // Renames each Incoming from tmp/ into cur/ (new/ for into_new) and
    // indexes it with the next UID, in one transaction; returns the UIDs (0
    // where that one failed).  Then it fsyncs the directories it changed and
    // syncs the index, unless `deferred` is given: the caller (a group
    // commit) then does what *deferred names, and sync_to_disk(env()),
    // before anyone is told the messages are stored.
    Result<std::vector<uint32_t>> adopt(std::vector<Incoming>& incoming, AdoptSyncs* deferred = nullptr);

    // Reads the files of these UIDs whose cache is not filled yet and stores
    // their ENVELOPE/BODYSTRUCTURE/... and internal date (no new modseq: the
    // messages did not change).  Returns how many files could not be read
    // (renamed or removed meanwhile).
    Result<size_t> fill(const std::vector<uint32_t>& uids);

    // Keyword bit for name (added to the list when add is true); nullopt when
    // unknown or the list is full.
    static std::optional<unsigned> keyword_bit(IndexMeta& m, const std::string& name, bool add);

private:
    FolderIndex() = default;
    Result<int64_t> unchanged_listing(const lmdb::Txn& txn, const std::string& cur_dir) const;
    Status record_unchanged(const IndexMeta& seen, int64_t scanned);
    Result<bool> move_delivered(const std::string& new_dir, const std::string& cur_dir);
    Result<std::vector<std::string>> list_cur(const std::string& cur_dir) const;
    Status open_databases(lmdb::Txn& txn, unsigned flags);
    // The end of a deferred creation (open()'s defer_creation): after the
    // commit that created the databases, or creating them now.
    void settle_creation(bool committed);
    bool uncreated_ = false;  // the databases are not created yet (registry_mutex)
    mutable std::atomic<uint64_t> cur_listings_{0};
    std::mutex hint_mutex_;
    std::optional<RootHint> hinted_;  // the root hint this process stored last
    // Whether index_path still names the file this environment has open
    // (not renamed or deleted by another process since).
    bool still_at_path() const;
    // Where the map starts (read_ahead() needs it; LMDB does not tell).
    std::optional<uintptr_t> find_map() const;
    uintptr_t map_ = 0;
    size_t map_size_ = 0;  // 0: map_ not known yet
    mutable std::atomic<bool> view_prefetched_{false};
    std::string dir_, index_path_;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    pid_t pid_ = 0;
    std::unique_ptr<lmdb::Env> env_;
};

// Durably makes the last commits' data reach the disk (UID assignments).
Status sync_to_disk(lmdb::Env& env);

int64_t file_mtime_ns(const std::string& path);

}  // namespace tern::mailstore
