// Folder index: open/share, meta, reconciliation with the Maildir, adoption
// of new messages.  See folder_index.hpp.
#include "lib/mailstore/folder_index.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>

#include "lib/core/errno_text.hpp"
#include "lib/core/fd.hpp"
#include "lib/lmdb/raw_file.hpp"
#include "lib/mailstore/arrival_order.hpp"
#include "lib/mailstore/maildir_names.hpp"
#include "lib/mailstore/message_bytes.hpp"
#include "lib/mailstore/name_table.hpp"
#include "lib/mailstore/mailstore.hpp"
#include "lib/maildir/maildir.hpp"
#include "lib/mime/message.hpp"
#include "lib/sys/files.hpp"
#include "lib/sys/sync_pool.hpp"

namespace tern::mailstore {
namespace {

// Files indexed per write transaction when many unknown files appear at
// once (first open of a big Maildir): keeps transactions and lock holds short.
constexpr size_t kBatch = 1000;
// fill() reads a batch of at least this many files on two threads.
constexpr size_t kParallelScan = 64;
// Files known from their names alone cost a record each and no reading:
// many more of them go into one transaction (each commit is an fsync; a
// 100,000-message folder in 100 of them took over a second).
constexpr size_t kNameBatch = 25000;
// Expunges remembered for QRESYNC, and how far past that the table may grow
// before the oldest are forgotten (one scan of it per that many expunges).
constexpr size_t kMaxVanished = 100000;
// A first build that answers early (build_first()) is one transaction: up
// to this many files (LMDB's dirty pages of one transaction are bounded;
// 500,000 records are ~100 MB of ~512 MB), its map grown first to what
// the records, names and view take (~200 bytes a message) with room.
constexpr size_t kMaxEarlyBuild = 500000;
constexpr size_t kEarlyBuildBytesPerMessage = 512;
constexpr size_t kEarlyBuildMapSlack = size_t{16} << 20;
constexpr size_t kVanishedSlack = kMaxVanished / 4;
// meta "counts": stamp modseq u64, stamp uidnext u32, then FolderCounts as five u64.
constexpr size_t kCountsSize = 8 + 4 + 5 * 8;
// meta "view_stamp": the modseq u64, uidnext u32 and record count u64 the
// packed view was last brought up to date with.
constexpr size_t kViewStampSize = 8 + 4 + 8;
// meta "first_unseen": the same stamp, then the UID u32 and the records
// before it u64.
constexpr size_t kFirstUnseenSize = kViewStampSize + 4 + 8;

// The header's keys in `meta`, in the order of their copy in the main
// database (key kHeaderCopy): the copy is the transaction id that wrote it
// (u64), then per key a u16 length (kAbsent: no such key) and the value.
// A key of the main database that is not a named database's: LMDB's own
// tools skip it, and no database is opened under this name.
constexpr const char* kHeaderKeys[] = {"uidvalidity", "uidnext",    "modseq", "cur_mtime",
                                       "cur_dirty",   "vanished_floor", "recent_uid", "view_stamp",
                                       "first_unseen", "counts",    "keywords"};
constexpr size_t kHeaderKeyCount = sizeof kHeaderKeys / sizeof kHeaderKeys[0];
constexpr std::string_view kHeaderCopy = "tern-header";
constexpr uint16_t kAbsent = 0xffff;
constexpr lmdb::Dbi kMainDb{1};  // LMDB's MAIN_DBI: always open

// The values of a header copy, by kHeaderKeys index; false when it is not
// one (another layout, cut short).
bool decode_header_copy(std::string_view copy, uint64_t& txnid, std::optional<std::string_view> (&values)[kHeaderKeyCount]) {
    if (copy.size() < 8) return false;
    std::memcpy(&txnid, copy.data(), 8);
    size_t at = 8;
    for (auto& v : values) {
        uint16_t len;
        if (copy.size() - at < 2) return false;
        std::memcpy(&len, copy.data() + at, 2);
        at += 2;
        if (len == kAbsent) {
            v.reset();
            continue;
        }
        if (copy.size() - at < len) return false;
        v = copy.substr(at, len);
        at += len;
    }
    return at == copy.size();
}

std::mutex registry_mutex;
std::map<std::string, std::weak_ptr<FolderIndex>> registry;
// A new index whose databases its first build creates (FolderIndex::open's
// defer_creation) is not used by another thread before: signalled when
// one is created.  Guarded by registry_mutex, with uncreated_.
std::condition_variable creation_done;
// Indexes kept open after their last Mailbox closed, most recently used
// last: a new session's SELECT of a folder used a moment ago (a client's
// second connection, a poll) skips opening the LMDB environment and
// faulting its pages in again.  Guarded by registry_mutex.
constexpr size_t kKeepOpen = 16;
std::vector<std::shared_ptr<FolderIndex>> kept_open;

// Moves idx to the end of kept_open; returns the one that no longer fits
// (for the caller to destroy after unlocking: ~FolderIndex locks too).
std::shared_ptr<FolderIndex> keep_open(const std::shared_ptr<FolderIndex>& idx) {
    auto it = std::find(kept_open.begin(), kept_open.end(), idx);
    if (it != kept_open.end()) kept_open.erase(it);
    kept_open.push_back(idx);
    if (kept_open.size() <= kKeepOpen) return nullptr;
    auto evicted = std::move(kept_open.front());
    kept_open.erase(kept_open.begin());
    return evicted;
}

// Takes idx out of kept_open (it is stale); returned for destruction after unlocking.
std::shared_ptr<FolderIndex> forget(const std::shared_ptr<FolderIndex>& idx) {
    auto it = std::find(kept_open.begin(), kept_open.end(), idx);
    if (it == kept_open.end()) return nullptr;
    auto out = std::move(*it);
    kept_open.erase(it);
    return out;
}

template <typename T>
std::string raw(T v) {
    return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}

template <typename T>
T from_raw(std::optional<std::string_view> v, T fallback) {
    if (!v || v->size() != sizeof(T)) return fallback;
    T out;
    std::memcpy(&out, v->data(), sizeof out);
    return out;
}

int64_t now_ns() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// A directory's mtime is trusted once it is this old: file systems stamp
// directories with a coarse clock, and a change in the same tick as the
// recorded mtime would otherwise go unseen.
constexpr int64_t kTrustedAgeNs = 1000000000;

// Whether cur/, whose mtime is `mtime`, holds what the index says as far
// as the mtime tells: the mtime of the last listing that matched (old
// enough to trust), or the one our own moves from new/ left, within a
// second of the first such move not checked by a listing since.
bool cur_known(const IndexMeta& m, int64_t mtime, int64_t now) {
    if (m.uidvalidity == 0) return false;
    if (m.cur_mtime != 0 && m.cur_mtime == mtime) return true;
    return m.cur_dirty_mtime != 0 && m.cur_dirty_mtime == mtime && now - m.cur_dirty_since < kTrustedAgeNs;
}

// Records that a listing of cur/ stamped `scanned` (its mtime, taken
// before the listing) matched the records: trusted when old enough; a
// newer one for a second, then checked by one listing (cur_known()), as
// a delivery's move is: a change another tool made in the clock tick of
// the listing would not show in the mtime.  (Not trusted at all, it made
// the refresh right after a folder's first SELECT list it again.)
void record_listing(IndexMeta& m, int64_t scanned) {
    int64_t now = now_ns();
    bool old_enough = now - scanned >= kTrustedAgeNs;
    m.cur_mtime = old_enough ? scanned : 0;
    m.cur_dirty_mtime = old_enough ? 0 : scanned;
    m.cur_dirty_since = old_enough ? 0 : now;
}

// Calls fn with each name in dir but the dot files, in the listing's order.
template <class Fn>
Status for_each_name(const std::string& dir, Fn&& fn) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return errno_error("opendir " + dir);
    while (struct dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') fn(std::string_view(e->d_name));
    ::closedir(d);
    return {};
}

Result<std::vector<std::string>> list_dir(const std::string& dir) {
    std::vector<std::string> out;
    if (auto st = for_each_name(dir, [&](std::string_view name) { out.emplace_back(name); }); !st) return st.error();
    return out;
}

// A directory's names in one buffer: a first SELECT lists 100,000, and a
// string each was 100,000 allocations, and as many cache misses when read
// in another order than the listing's.
struct NameList {
    std::string bytes;
    std::vector<std::string_view> names;  // into bytes
};

// `expected`: about how many bytes the names take (the buffer grows past it).
Result<NameList> list_names(const std::string& dir, size_t expected) {
    NameList list;
    list.bytes.reserve(expected);
    std::vector<std::pair<uint32_t, uint32_t>> at;  // offset, length: bytes may move while it grows
    at.reserve(expected / 32);
    auto st = for_each_name(dir, [&](std::string_view name) {
        at.emplace_back(static_cast<uint32_t>(list.bytes.size()), static_cast<uint32_t>(name.size()));
        list.bytes += name;
    });
    if (!st) return st.error();
    list.names.reserve(at.size());
    for (auto [offset, length] : at) list.names.emplace_back(list.bytes.data() + offset, length);
    return list;
}

bool dir_has_entries(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return false;
    bool any = false;
    while (struct dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') {
            any = true;
            break;
        }
    }
    ::closedir(d);
    return any;
}

// rename() that never replaces an existing name (a message file is never overwritten).
bool rename_no_replace(const std::string& from, const std::string& to) {
    return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0;
}

Fd open_dir(const std::string& dir) { return Fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); }

// Reads a message file and builds what the index keeps about it.
struct ScannedFile {
    std::string name;
    uint64_t size = 0, crlf_size = 0;
    int64_t mtime = 0;
    // Only for a file that was read (`cached`): a first SELECT makes one
    // ScannedFile per file of the folder, most known from their names.
    std::unique_ptr<ParsedCache> cache;
    bool ok = false;
    bool cached = true;  // false: cache and mtime not read yet
    // The name parsed once (parse_message_name()): its base is the first
    // base_size bytes, its flag letters give `flags`.
    size_t base_size = 0;
    uint8_t flags = 0;
    std::string_view base() const { return std::string_view(name).substr(0, base_size); }
};

MessageName parse_into(ScannedFile& f) {
    auto parsed = parse_message_name(f.name);
    f.base_size = parsed.base.size();
    f.flags = flags_from_letters(parsed.letters);
    return parsed;
}

// A file known from its name alone (local-delivery's and Dovecot's names
// carry both sizes): nothing is read until a FETCH needs it.
// Fills f in place (a first SELECT makes one per file of the folder).
void name_only(ScannedFile& f, std::string&& name) {
    f.name = std::move(name);
    auto parsed = parse_into(f);
    if (!parsed.size || !parsed.crlf_size) return;
    f.size = *parsed.size;
    f.crlf_size = *parsed.crlf_size;
    f.ok = true;
    f.cached = false;
}

// count_crlf: false when the caller knows the file's CRLF size (the
// record's, from the name), and the count over the whole file is not
// made (f.crlf_size is 0 then).
// dir: cur/, open (openat() from it: no walk of the whole path per file).
ScannedFile scan_file(int dir, const std::string& name, bool count_crlf = true) {
    ScannedFile f;
    f.name = name;
    parse_into(f);
    Fd fd(::openat(dir, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return f;
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return f;
    f.size = static_cast<uint64_t>(st.st_size);
    f.mtime = st.st_mtim.tv_sec;
    auto message = MessageBytes::read(fd.get(), static_cast<size_t>(st.st_size), name);
    if (!message) return f;  // (shorter now: read at the next need)
    f.crlf_size = count_crlf ? mime::crlf_size(message->bytes()) : 0;
    f.cache = std::make_unique<ParsedCache>(build_cache(message->bytes()));
    f.ok = true;
    return f;
}

// new/ → cur/ for every file there (with the ":2," info a name without it
// gets); a name already taken in cur/ is left in new/ for the next sync.
void move_all_new(const std::string& new_dir, const std::string& cur_dir) {
    auto names_in_new = list_dir(new_dir);
    if (!names_in_new) return;
    for (const auto& n : *names_in_new) {
        auto parsed = parse_message_name(n);
        std::string target = parsed.has_info ? n : n + ":2,";
        (void)rename_no_replace(new_dir + "/" + n, cur_dir + "/" + target);
    }
}

}  // namespace

int64_t file_mtime_ns(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return -1;
    return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

Status sync_to_disk(lmdb::Env& env) {
    int rc = mdb_env_sync(env.get(), 1);
    if (rc != 0) return lmdb::mdb_error("mdb_env_sync", rc);
    return {};
}

bool FolderIndex::still_at_path() const {
    struct stat st {};
    return ::stat(index_path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_;
}

Result<std::shared_ptr<FolderIndex>> FolderIndex::open(const std::string& dir, const std::string& index_path,
                                                      bool defer_creation) {
    // Destroyed after the lock is released (~FolderIndex takes it), also
    // on the error returns below.
    std::shared_ptr<FolderIndex> stale, evicted, idx;
    std::unique_lock lock(registry_mutex);
    auto it = registry.find(index_path);
    if (it != registry.end()) {
        if (auto existing = it->second.lock()) {
            if (existing->pid_ != ::getpid()) {
                // Inherited over fork(): LMDB handles must not be used, nor
                // closed (closing the lock file would drop this process's
                // own fcntl locks on it).  Left alone for good.
                for (auto& k : kept_open)
                    if (k->pid_ != ::getpid()) new std::shared_ptr<FolderIndex>(std::move(k));
                std::erase(kept_open, nullptr);
                new std::shared_ptr<FolderIndex>(std::move(existing));
            } else if (existing->still_at_path()) {
                // Its first build creates its databases: wait for it (it
                // never waits for this thread).
                creation_done.wait(lock, [&] { return !existing->uncreated_; });
                evicted = keep_open(existing);
                return existing;
            } else {
                // Renamed, deleted or replaced by another process: sessions
                // that hold it keep theirs; new ones open what is there now.
                stale = forget(existing);
            }
        }
        registry.erase(it);
    }
    // The first pages an open reads, asked for at once (a cold index).
    auto hinted = prefetch_for_open(dir, index_path);
    if (auto s = sys::mkdir_p(sys::dir_name(index_path), 0700); !s) return s.error();
    lmdb::Env::Options opt;
    // NOMETASYNC: one fsync per commit; commits that assign UIDs are followed
    // by sync_to_disk().  Flags survive in file names anyway.
    opt.flags = MDB_NOSUBDIR | MDB_NOMETASYNC;
    opt.max_dbs = 8;
    // Room for a 100,000-message folder's first build (~20 MB of records,
    // names and view): a smaller map filled up mid-build, and the batch
    // that hit MDB_MAP_FULL was written again into a grown one.
    opt.map_size = size_t{64} << 20;
    auto env = lmdb::Env::open(index_path, opt);
    if (!env) return env.error();
    idx.reset(new FolderIndex);
    idx->dir_ = dir;
    idx->index_path_ = index_path;
    idx->hinted_ = hinted;  // stored again only when a commit moves the root
    idx->env_ = std::move(*env);
    struct stat st {};
    mdb_filehandle_t fd = -1;
    if (mdb_env_get_fd(idx->env_->get(), &fd) == 0 && ::fstat(fd, &st) == 0) {
        idx->dev_ = st.st_dev;
        idx->ino_ = st.st_ino;
    }
    // The databases' roots are a few scattered pages: no read-ahead around them.
    std::optional<PointReads> point_reads(std::in_place, *idx);
    // An existing index opens in a read transaction (committed: that keeps
    // the handles), so that SELECT does not wait for a writer; a new one
    // gets its databases created.
    bool opened = false;
    if (auto txn = idx->env_->begin_read(); txn && idx->open_databases(*txn, 0)) {
        idx->prefetch_roots(*txn);
        opened = txn->commit().ok();
    }
    if (!opened && defer_creation) {
        idx->uncreated_ = true;
    } else if (!opened) {
        // Synced like every commit (its pages; the meta page is not,
        // MDB_NOMETASYNC): unsynced, a crash could keep the meta page and
        // lose the root page it names, a torn index that no open repairs
        // (ext4 does not order the writes).  Losing only the meta page
        // leaves an empty file: created again by the next open.
        auto st = idx->write([&](lmdb::Txn& txn) { return idx->open_databases(txn, MDB_CREATE); });
        if (!st) return st.error();
    }
    point_reads.reset();
    idx->pid_ = ::getpid();
    registry[index_path] = idx;
    evicted = keep_open(idx);
    return idx;
}

Status FolderIndex::open_databases(lmdb::Txn& txn, unsigned flags) {
    // "view" is missing in an index of an older tern: created here, filled
    // by the first rebuild_header().
    const char* names_of[] = {"meta", "msgs", "names", "cache", "vanished", "view"};
    lmdb::Dbi* dbis[] = {&meta, &msgs, &names, &cache, &vanished, &view};
    for (int i = 0; i < 6; ++i) {
        auto d = txn.open_dbi(names_of[i], flags);
        if (!d) return d.error();
        *dbis[i] = *d;
    }
    return {};
}

void FolderIndex::settle_creation(bool committed) {
    if (!uncreated_) return;
    // A build that failed before its commit: the databases are created
    // (and synced, see open()) as any new index's are.
    if (!committed) (void)write([&](lmdb::Txn& txn) { return open_databases(txn, MDB_CREATE); });
    {
        std::lock_guard lock(registry_mutex);
        uncreated_ = false;
    }
    creation_done.notify_all();
}

Status FolderIndex::write(const std::function<Status(lmdb::Txn&)>& fn) {
    auto st = env_->write(fn);
    if (!st) return st;
    mdb_filehandle_t fd = -1;
    if (mdb_env_get_fd(env_->get(), &fd) != 0) return st;
    auto root = read_main_root(fd);
    std::lock_guard lock(hint_mutex_);
    if (root && root != hinted_) {
        store_root_hint(dir_, *root);
        hinted_ = root;
    }
    return st;
}

FolderIndex::~FolderIndex() {
    std::lock_guard lock(registry_mutex);
    auto it = registry.find(index_path_);
    if (it != registry.end() && it->second.expired()) registry.erase(it);
}

namespace {

// The header from its values (by kHeaderKeys index), the msgs database
// holding `records` records.
IndexMeta decode_header(const std::optional<std::string_view> (&values)[kHeaderKeyCount], uint64_t records) {
    auto get = [&](std::string_view key) {
        for (size_t i = 0; i < kHeaderKeyCount; ++i)
            if (kHeaderKeys[i] == key) return values[i];
        return std::optional<std::string_view>();
    };
    IndexMeta m;
    m.uidvalidity = from_raw<uint32_t>(get("uidvalidity"), 0);
    m.uidnext = from_raw<uint32_t>(get("uidnext"), 1);
    m.uidnext_read = m.uidnext;
    m.modseq = from_raw<uint64_t>(get("modseq"), 1);
    m.cur_mtime = from_raw<int64_t>(get("cur_mtime"), 0);
    if (auto cd = get("cur_dirty"); cd && cd->size() == 2 * sizeof(int64_t)) {
        std::memcpy(&m.cur_dirty_mtime, cd->data(), sizeof(int64_t));
        std::memcpy(&m.cur_dirty_since, cd->data() + sizeof(int64_t), sizeof(int64_t));
    }
    m.vanished_floor = from_raw<uint64_t>(get("vanished_floor"), 0);
    m.recent_uid = from_raw<uint32_t>(get("recent_uid"), 0);
    auto vs = get("view_stamp");
    if (vs && vs->size() == kViewStampSize) {
        uint64_t stamp_modseq, stamp_records;
        uint32_t stamp_uidnext;
        std::memcpy(&stamp_modseq, vs->data(), 8);
        std::memcpy(&stamp_uidnext, vs->data() + 8, 4);
        std::memcpy(&stamp_records, vs->data() + 12, 8);
        m.view_valid = stamp_modseq == m.modseq && stamp_uidnext == m.uidnext && stamp_records == records;
    }
    auto fu = get("first_unseen");
    if (m.view_valid && fu && fu->size() == kFirstUnseenSize && vs->substr(0, kViewStampSize) == fu->substr(0, kViewStampSize)) {
        std::memcpy(&m.first_unseen.uid, fu->data() + kViewStampSize, 4);
        std::memcpy(&m.first_unseen.below, fu->data() + kViewStampSize + 4, 8);
        m.unseen_valid = true;
    }
    if (auto counts = get("counts"); counts && counts->size() == kCountsSize) {
        const char* p = counts->data();
        uint64_t stamp_modseq, v[5];
        uint32_t stamp_uidnext;
        std::memcpy(&stamp_modseq, p, 8);
        std::memcpy(&stamp_uidnext, p + 8, 4);
        std::memcpy(v, p + 12, sizeof v);
        m.counts = {v[0], v[1], v[2], v[3], v[4]};
        m.counts_valid = stamp_modseq == m.modseq && stamp_uidnext == m.uidnext && records == m.counts.messages;
    }
    if (auto kw = get("keywords"); kw && !kw->empty()) {
        std::string_view list = *kw;
        size_t start = 0;
        while (start <= list.size()) {
            size_t nul = list.find('\0', start);
            if (nul == std::string_view::npos) nul = list.size();
            m.keywords.emplace_back(list.substr(start, nul - start));
            start = nul + 1;
        }
    }
    return m;
}

}  // namespace

Result<IndexMeta> FolderIndex::read_meta(const lmdb::Txn& txn, bool use_copy) const {
    // The copy counts only when the last commit wrote it: a commit that did
    // not (an older tern, a test changing `meta` directly) makes it stale.
    // A write transaction's id is the one it will commit with: never equal.
    std::optional<std::string_view> values[kHeaderKeyCount];
    bool from_copy = false;
    if (use_copy) {
        auto copy = txn.get(kMainDb, kHeaderCopy);
        if (!copy) return copy.error();
        uint64_t txnid = 0;
        from_copy = *copy && decode_header_copy(**copy, txnid, values) && txnid == mdb_txn_id(txn.get());
    }
    if (!from_copy) {
        for (size_t i = 0; i < kHeaderKeyCount; ++i) {
            auto v = txn.get(meta, kHeaderKeys[i]);
            if (!v) return v.error();
            values[i] = *v;
        }
    }
    MDB_stat st{};
    if (int rc = mdb_stat(txn.get(), msgs.handle, &st); rc != 0) return lmdb::mdb_error("mdb_stat", rc);
    IndexMeta m = decode_header(values, st.ms_entries);
    m.from_copy = from_copy;
    return m;
}

OpenAnswer answer_of(const IndexMeta& m) {
    OpenAnswer answer;
    MailboxStatus& a = answer.status;
    a.uidvalidity = m.uidvalidity;
    a.uidnext = m.uidnext;
    a.highestmodseq = m.modseq;
    a.messages = static_cast<uint32_t>(m.counts.messages);
    a.unseen = static_cast<uint32_t>(m.counts.unseen);
    a.deleted = static_cast<uint32_t>(m.counts.deleted);
    a.size = m.counts.crlf_size;
    a.recent = static_cast<uint32_t>(m.counts.unclaimed);
    if (m.counts.unseen != 0 && m.first_unseen.uid != 0) answer.first_unseen = static_cast<uint32_t>(m.first_unseen.below + 1);
    answer.keywords = m.keywords;
    return answer;
}

std::optional<IndexMeta> FolderIndex::answerable_header(const std::string& dir, const std::string& index_path) {
    {
        // Open here already (not merely inherited over fork()): opening it
        // again costs nothing to wait for.
        std::lock_guard lock(registry_mutex);
        if (auto it = registry.find(index_path); it != registry.end())
            if (auto known = it->second.lock(); known && known->pid_ == ::getpid()) return std::nullopt;
    }
    int64_t cur_mtime = file_mtime_ns(dir + "/cur");
    if (cur_mtime < 0) return std::nullopt;
    auto m = peek_header(dir, index_path);
    // The header must be whole (SELECT's figures and [UNSEEN n]), with
    // nothing in new/ to index and no \Recent to claim, and cur/'s mtime
    // must be one the index recorded: otherwise open() writes first, and its
    // answer is another.  A recorded mtime may still await its one check
    // (cur_known(): a listing younger than a second); sync() makes it in
    // open(), after the answer, and what it finds (a change another tool
    // made in that clock tick) is news for the next refresh().
    if (!m || !m->counts_valid || !m->unseen_valid || m->counts.unclaimed != 0 || m->uidvalidity == 0 ||
        (cur_mtime != m->cur_mtime && cur_mtime != m->cur_dirty_mtime) || dir_has_entries(dir + "/new"))
        return std::nullopt;
    return m;
}

void FolderIndex::drop_kept_open() {
    std::vector<std::shared_ptr<FolderIndex>> dropped;
    {
        std::lock_guard lock(registry_mutex);
        dropped.swap(kept_open);
    }
}

std::optional<IndexMeta> FolderIndex::peek_header(const std::string& dir, const std::string& index_path) {
    Fd fd(::open(index_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return std::nullopt;
    // The root's read asked for beside the meta pages' (root_hint.hpp).
    auto hint = load_root_hint(dir);
    if (hint)
        (void)::posix_fadvise(fd.get(), static_cast<off_t>(hint->root * hint->page_size), hint->page_size,
                              POSIX_FADV_WILLNEED);
    auto leaf = lmdb::raw::read_main_leaf(fd.get(), hint ? hint->page_size : 0);
    if (!leaf) return std::nullopt;
    const auto* copy = leaf->find(kHeaderCopy);
    const auto* records = leaf->find("msgs");
    if (!copy || copy->named_db || !records || !records->named_db) return std::nullopt;
    std::optional<std::string_view> values[kHeaderKeyCount];
    uint64_t txnid = 0;
    if (!decode_header_copy(copy->value, txnid, values) || txnid != leaf->meta.txnid) return std::nullopt;
    IndexMeta m = decode_header(values, records->entries);
    m.from_copy = true;
    return m;
}

Status FolderIndex::write_meta(lmdb::Txn& txn, const IndexMeta& m, ViewDelta* delta) {
    if (delta)
        if (auto s = delta->flush(txn, view); !s) return s;
    if (delta && delta->damaged()) {
        // A stamp left from before could match again (fill() keeps the modseq).
        if (auto r = txn.del(meta, "view_stamp"); !r) return r.error();
        if (auto r = txn.del(meta, "first_unseen"); !r) return r.error();
    } else if (m.view_valid) {
        MDB_stat st{};
        if (int rc = mdb_stat(txn.get(), msgs.handle, &st); rc != 0) return lmdb::mdb_error("mdb_stat", rc);
        uint64_t records = st.ms_entries;
        std::string stamp = raw(m.modseq) + raw(m.uidnext) + raw(records);
        if (auto s = txn.put(meta, "view_stamp", stamp); !s) return s;
        // The first unseen message, brought up to date from the changes (a
        // walk of the chunks where they do not tell).
        auto fu = !m.unseen_valid ? find_first_unseen(txn, view, 0, 0)
                  : delta         ? update_first_unseen(txn, view, m.first_unseen, *delta, m.uidnext_read, records)
                                  : Result<FirstUnseen>(m.first_unseen);
        if (!fu) return fu.error();
        if (auto s = txn.put(meta, "first_unseen", stamp + raw(fu->uid) + raw(fu->below)); !s) return s;
    }
    std::string kw;
    for (size_t i = 0; i < m.keywords.size(); ++i) {
        if (i) kw += '\0';
        kw += m.keywords[i];
    }
    for (auto& [key, value] : std::initializer_list<std::pair<const char*, std::string>>{
             {"uidvalidity", raw(m.uidvalidity)},
             {"uidnext", raw(m.uidnext)},
             {"modseq", raw(m.modseq)},
             {"cur_mtime", raw(m.cur_mtime)},
             {"cur_dirty", raw(m.cur_dirty_mtime) + raw(m.cur_dirty_since)},
             {"vanished_floor", raw(m.vanished_floor)},
             {"keywords", kw},
             {"recent_uid", raw(m.recent_uid)}})
        if (auto s = txn.put(meta, key, value); !s) return s;
    if (m.counts_valid) {
        std::string counts = raw(m.modseq) + raw(m.uidnext);
        for (uint64_t v : {m.counts.messages, m.counts.unseen, m.counts.deleted, m.counts.crlf_size, m.counts.unclaimed})
            counts += raw(v);
        if (auto s = txn.put(meta, "counts", counts); !s) return s;
    }
    return write_header_copy(txn);
}

Status FolderIndex::write_header_copy(lmdb::Txn& txn) {
    // Read back from `meta` as this transaction left it: the copy is
    // exactly what read_meta() would find there.
    std::string copy = raw(static_cast<uint64_t>(mdb_txn_id(txn.get())));
    for (const char* key : kHeaderKeys) {
        auto v = txn.get(meta, key);
        if (!v) return v.error();
        if (*v && (*v)->size() >= kAbsent) return {};  // no copy: the old one's id is stale
        copy += raw(static_cast<uint16_t>(*v ? (*v)->size() : kAbsent));
        if (*v) copy += **v;
    }
    return txn.put(kMainDb, kHeaderCopy, copy);
}

void IndexMeta::count_in(uint32_t uid, const MessageRecord& r) {
    ++counts.messages;
    if (uid > recent_uid) ++counts.unclaimed;
    if (!(r.flags & kSeen)) ++counts.unseen;
    if (r.flags & kDeleted) ++counts.deleted;
    counts.crlf_size += r.crlf_size;
}

void IndexMeta::count_out(uint32_t uid, const MessageRecord& r) {
    // Never below zero, even if a count went wrong: the stamp check catches
    // records changed without it, not arithmetic on a bad base.
    auto dec = [](uint64_t& v, uint64_t by) { v -= std::min(v, by); };
    dec(counts.messages, 1);
    if (uid > recent_uid) dec(counts.unclaimed, 1);
    if (!(r.flags & kSeen)) dec(counts.unseen, 1);
    if (r.flags & kDeleted) dec(counts.deleted, 1);
    dec(counts.crlf_size, r.crlf_size);
}

void FolderIndex::read_ahead(bool on) {
    MDB_envinfo info{};
    if (mdb_env_info(env_->get(), &info) != 0) return;
    if (map_size_ != info.me_mapsize) {
        // Found again after LMDB mapped the file anew (it does when the map grows).
        auto where = find_map();
        if (!where) return;
        map_ = *where;
        map_size_ = info.me_mapsize;
    }
    (void)::madvise(reinterpret_cast<void*>(map_), map_size_, on ? MADV_NORMAL : MADV_RANDOM);
}

std::optional<uintptr_t> FolderIndex::find_map() const {
    // LMDB does not say where it mapped the file (MDB_envinfo's me_mapaddr
    // is set only with MDB_FIXEDMAP): /proc/self/maps does, by device and
    // inode, without touching a page of the map.
    FILE* maps = ::fopen("/proc/self/maps", "re");
    if (!maps) return std::nullopt;
    std::optional<uintptr_t> start;
    char line[4096];
    while (!start && ::fgets(line, sizeof line, maps)) {
        unsigned long b = 0, e = 0, offset = 0, inode = 0;
        unsigned dev_major = 0, dev_minor = 0;
        char perms[8] = {};
        if (::sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &b, &e, perms, &offset, &dev_major, &dev_minor, &inode) != 7)
            continue;
        if (inode == ino_ && dev_major == major(dev_) && dev_minor == minor(dev_) && offset == 0 && perms[3] == 's')
            start = b;
    }
    ::fclose(maps);
    return start;
}

Status FolderIndex::bound_vanished(lmdb::Txn& txn, IndexMeta& m) {
    MDB_stat st {};
    if (int rc = mdb_stat(txn.get(), vanished.handle, &st); rc != 0) return lmdb::mdb_error("mdb_stat vanished", rc);
    if (st.ms_entries <= kMaxVanished + kVanishedSlack) return {};
    std::vector<std::pair<uint64_t, std::string>> entries;  // modseq, key
    entries.reserve(st.ms_entries);
    {
        auto cur = txn.cursor(vanished);
        if (!cur) return cur.error();
        auto e = cur->first();
        for (; e && *e; e = cur->next())
            entries.emplace_back(from_raw<uint64_t>((*e)->value, 0), std::string((*e)->key));
        if (!e) return e.error();
    }  // a write cursor must be gone before the txn changes further
    if (entries.size() <= kMaxVanished) return {};
    // Forget everything up to the modseq of the (n - max)th oldest: all its
    // expunges go together, so the floor is exact.
    auto nth = entries.begin() + static_cast<std::ptrdiff_t>(entries.size() - kMaxVanished - 1);
    std::nth_element(entries.begin(), nth, entries.end());
    const uint64_t floor = nth->first;
    for (const auto& [modseq, key] : entries)
        if (modseq <= floor)
            if (auto r = txn.del(vanished, key); !r) return r.error();
    m.vanished_floor = std::max(m.vanished_floor, floor);
    return {};
}

Status FolderIndex::rebuild_header() {
    return write([&](lmdb::Txn& txn) -> Status {
        auto m = read_meta(txn);
        if (!m) return m.error();
        if (m->counts_valid && m->view_valid) return {};  // another process rebuilt them
        if (!m->counts_valid) {
            m->counts = {};
            auto cur = txn.cursor(msgs);
            if (!cur) return cur.error();
            auto e = cur->first();
            for (; e && *e; e = cur->next())
                if (auto rec = decode_record((*e)->value)) m->count_in(key_uid((*e)->key), *rec);
            if (!e) return e.error();
            cur->close();
            m->counts_valid = true;
        }
        if (!m->view_valid) {
            if (auto s = rebuild_packed(txn, msgs, view); !s) return s;
            m->view_valid = true;
        }
        m->unseen_valid = false;  // walked from the chunks by write_meta()
        return write_meta(txn, *m);
    });
}

std::vector<size_t> FolderIndex::root_pages(const lmdb::Txn& txn) const {
    // The main database's value for a named database is LMDB's MDB_db
    // record (its on-disk format, data version 1): the root page number is
    // its last field, after u32, u16, u16 and four size_t.  Checked against
    // the pages themselves by a unit test.
    constexpr size_t kDbRecordSize = 8 + 5 * sizeof(size_t), kRootAt = 8 + 4 * sizeof(size_t);
    std::vector<size_t> out;
    MDB_dbi main_db = 0;
    MDB_envinfo info{};
    if (mdb_dbi_open(txn.get(), nullptr, 0, &main_db) != 0 || mdb_env_info(env_->get(), &info) != 0) return out;
    for (const char* name : {"meta", "view"}) {
        MDB_val key{std::strlen(name), const_cast<char*>(name)}, value{0, nullptr};
        if (mdb_get(txn.get(), main_db, &key, &value) != 0 || value.mv_size != kDbRecordSize) continue;
        size_t root = 0;
        std::memcpy(&root, static_cast<const char*>(value.mv_data) + kRootAt, sizeof root);
        // An empty database's root is P_INVALID; page 0 and 1 are LMDB's meta pages.
        if (root >= 2 && root <= info.me_last_pgno) out.push_back(root);
    }
    return out;
}

void FolderIndex::prefetch_roots(const lmdb::Txn& txn) {
    MDB_envinfo info{};
    MDB_stat st{};
    if (mdb_env_info(env_->get(), &info) != 0 || mdb_env_stat(env_->get(), &st) != 0) return;
    if (map_size_ != info.me_mapsize) {
        auto where = find_map();
        if (!where) return;
        map_ = *where;
        map_size_ = info.me_mapsize;
    }
    for (size_t page : root_pages(txn))
        (void)::madvise(reinterpret_cast<void*>(map_ + page * st.ms_psize), st.ms_psize, MADV_WILLNEED);
}

void FolderIndex::prefetch_view() {
    if (view_prefetched_.exchange(true)) return;
    PointReads scattered(*this);  // the chunks' places: a page or two of the view's tree
    auto txn = env_->begin_read();
    if (!txn) return;
    auto m = read_meta(*txn);
    if (m && m->view_valid) (void)prefetch_packed(*txn, view);
}

Status FolderIndex::for_each_entry(const lmdb::Txn& txn, const IndexMeta& m, bool whole,
                                   const std::function<bool(const PackedEntry&)>& fn,
                                   const std::function<void()>& restart) const {
    if (m.view_valid) {
        Prefetch how = !whole ? Prefetch::EachChunk : view_prefetched_.exchange(true) ? Prefetch::None : Prefetch::All;
        if (auto st = for_each_packed(txn, view, how, fn); st) return st;
        // A chunk that does not decode: the records are the truth.
        restart();
    }
    auto cur = txn.cursor(msgs);
    if (!cur) return cur.error();
    auto e = cur->first();
    for (; e && *e; e = cur->next()) {
        auto rec = decode_record((*e)->value);
        if (!rec) continue;
        if (!fn(packed_entry(key_uid((*e)->key), *rec))) return {};
    }
    if (!e) return e.error();
    return {};
}

std::optional<unsigned> FolderIndex::keyword_bit(IndexMeta& m, const std::string& name, bool add) {
    for (size_t i = 0; i < m.keywords.size(); ++i)
        if (mime::iequals(m.keywords[i], name)) return static_cast<unsigned>(i);
    if (!add || m.keywords.size() >= kMaxKeywords) return std::nullopt;
    m.keywords.push_back(name);
    return static_cast<unsigned>(m.keywords.size() - 1);
}

namespace {

void init_meta(IndexMeta& m) {
    if (m.uidvalidity != 0) return;
    m.uidvalidity = static_cast<uint32_t>(::time(nullptr));
    m.uidnext = 1;
    m.modseq = 1;
    m.counts = {};  // a new index: no records yet
    m.counts_valid = true;
    m.view_valid = true;
    m.first_unseen = {};
    m.unseen_valid = true;
}

// Where index_file() writes: one cursor per database for the whole
// transaction (lmdb::Appender).
struct RecordPuts {
    lmdb::Appender msgs, cache;
    std::string record;  // a buffer for the encoded record

    static Result<RecordPuts> open(const FolderIndex& idx, const lmdb::Txn& txn) {
        auto msgs = txn.appender(idx.msgs);
        if (!msgs) return msgs.error();
        auto cache = txn.appender(idx.cache);
        if (!cache) return cache.error();
        return RecordPuts{std::move(*msgs), std::move(*cache), {}};
    }
};

// Gives f the next UID and writes its record (and cache entry); the
// caller puts its base into `names`.
Status index_file(RecordPuts& puts, IndexMeta& m, ViewDelta& delta, const ScannedFile& f, uint8_t flags,
                  uint64_t keywords, int64_t date, int16_t offset, uint64_t modseq, uint32_t& uid_out) {
    uint32_t uid = m.uidnext++;
    MessageRecord r;
    r.modseq = modseq;
    r.keywords = keywords;
    r.size = f.size;
    r.crlf_size = f.crlf_size;
    r.internal_date = date;
    r.date_offset = offset;
    r.flags = flags;
    r.cached = f.cached;
    r.filename = f.name;
    std::string key = uid_key(uid);
    // UIDs are assigned in ascending order: appended (no search of the tree).
    encode_record(r, puts.record);
    if (auto s = puts.msgs.put(key, puts.record); !s) return s;
    m.count_in(uid, r);
    delta.put(uid, r);
    if (f.cached)
        if (auto s = puts.cache.put(key, encode_cache(f.cache->view())); !s) return s;
    uid_out = uid;
    return {};
}

// A batch of files found in cur/ (in arrival order) that get new UIDs:
// all but those another process indexed meanwhile (looked up when
// `look_up`) and, of two files with one base ("x:2,S" and "x:2," side by
// side in cur/), the later in arrival order, which is left to the next
// scan, as a lookup of each would do.
struct NewFiles {
    struct Unknown {
        const ScannedFile* file;
        uint32_t uid = 0;  // 0: a second file of the same base, not indexed
        bool twin = false;
    };
    std::vector<Unknown> unknown;  // arrival order
    std::vector<Unknown*> by_base;
    size_t indexed = 0;  // the ones that get a UID
};

Result<NewFiles> plan_new_files(FolderIndex& idx, lmdb::Txn& txn, const std::vector<ScannedFile>& files,
                                bool look_up) {
    NewFiles plan;
    auto& unknown = plan.unknown;
    unknown.reserve(files.size());
    for (const auto& f : files) {
        if (!f.ok) continue;  // vanished meanwhile
        if (look_up) {
            auto known = txn.get(idx.names, f.base());
            if (!known) return known.error();
            if (*known) continue;
        }
        unknown.push_back({&f});
    }
    auto& by_base = plan.by_base;
    by_base.reserve(unknown.size());
    for (auto& u : unknown) by_base.push_back(&u);
    auto base_order = [](const NewFiles::Unknown* a, const NewFiles::Unknown* b) {
        return a->file->base() < b->file->base();
    };
    // Arrival order is usually the names' order already.
    if (!std::is_sorted(by_base.begin(), by_base.end(), base_order))
        std::stable_sort(by_base.begin(), by_base.end(), base_order);
    for (size_t i = 1; i < by_base.size(); ++i)
        if (by_base[i]->file->base() == by_base[i - 1]->file->base()) by_base[i]->twin = true;
    for (const auto& u : unknown) plan.indexed += u.twin ? 0 : 1;
    return plan;
}

// Writes the planned files' records under new UIDs; `names` is filled in
// key order (appended to, no search of the tree per name).
Status write_new_files(FolderIndex& idx, lmdb::Txn& txn, IndexMeta& m, ViewDelta& delta, NewFiles& plan,
                       uint64_t modseq, bool& changed) {
    delta.reserve(plan.indexed);
    auto puts = RecordPuts::open(idx, txn);
    if (!puts) return puts.error();
    for (auto& u : plan.unknown) {
        if (u.twin) continue;
        const ScannedFile& f = *u.file;
        if (auto s = index_file(*puts, m, delta, f, f.flags, 0, f.mtime, 0, modseq, u.uid); !s) return s;
        changed = true;
    }
    auto names = txn.appender(idx.names);
    if (!names) return names.error();
    for (const auto* u : plan.by_base)
        if (u->uid != 0)
            if (auto s = names->put(u->file->base(), uid_key(u->uid)); !s) return s;
    return {};
}

// What SELECT answers once `plan` (of an index without records, header
// m) is written: build_first()'s early answer.
OpenAnswer answer_of(const IndexMeta& m, const NewFiles& plan) {
    OpenAnswer answer;
    MailboxStatus& a = answer.status;
    a.uidvalidity = m.uidvalidity;
    a.uidnext = m.uidnext + static_cast<uint32_t>(plan.indexed);
    a.highestmodseq = m.modseq + 1;
    a.messages = a.recent = static_cast<uint32_t>(plan.indexed);  // all above the claim mark
    uint32_t seq = 0;
    for (const auto& u : plan.unknown) {
        if (u.twin) continue;
        ++seq;
        if (!(u.file->flags & kSeen) && a.unseen++ == 0) answer.first_unseen = seq;
        if (u.file->flags & kDeleted) ++a.deleted;
        a.size += u.file->crlf_size;
    }
    answer.keywords = m.keywords;
    return answer;
}

// Whether the header written (w, with `recent` claimed or unclaimed) says
// what was told.
bool told_is_written(const OpenAnswer& told, const IndexMeta& w, uint64_t recent) {
    const MailboxStatus& a = told.status;
    uint32_t unseen_seq = w.first_unseen.uid ? static_cast<uint32_t>(w.first_unseen.below + 1) : 0;
    return w.uidvalidity == a.uidvalidity && w.uidnext == a.uidnext && w.modseq == a.highestmodseq &&
           w.counts.messages == a.messages && recent == a.recent && w.counts.unseen == a.unseen &&
           w.counts.deleted == a.deleted && w.counts.crlf_size == a.size && w.unseen_valid &&
           unseen_seq == told.first_unseen && w.keywords == told.keywords;
}

Status index_new_files(FolderIndex& idx, lmdb::Txn& txn, IndexMeta& m, ViewDelta& delta,
                       const std::vector<ScannedFile>& files, bool look_up, uint64_t modseq, bool& changed) {
    auto plan = plan_new_files(idx, txn, files, look_up);
    if (!plan) return plan.error();
    return write_new_files(idx, txn, m, delta, *plan, modseq, changed);
}

}  // namespace

Result<std::vector<std::string>> FolderIndex::list_cur(const std::string& cur_dir) const {
    ++cur_listings_;
    return list_dir(cur_dir);
}

// Whether cur/ holds exactly the indexed files under their indexed names:
// its mtime taken before the listing when it does, -1 when not.
Result<int64_t> FolderIndex::unchanged_listing(const lmdb::Txn& txn, const std::string& cur_dir) const {
    int64_t scanned = file_mtime_ns(cur_dir);
    auto listing = list_cur(cur_dir);
    if (!listing) return listing.error();
    MDB_stat st{};
    if (int rc = mdb_stat(txn.get(), msgs.handle, &st); rc != 0) return lmdb::mdb_error("mdb_stat", rc);
    if (st.ms_entries != listing->size()) return int64_t{-1};
    // One walk of the records in key order, each name taken out of a table
    // of the listing's (not two B-tree lookups per listed name): every
    // record names a listed file, and no two the same one.
    NameTable listed(*listing);
    auto cur = txn.cursor(msgs);
    if (!cur) return cur.error();
    auto e = cur->first();
    for (; e && *e; e = cur->next()) {
        auto rec = decode_record((*e)->value);
        if (!rec || !listed.take(rec->filename)) return int64_t{-1};
    }
    if (!e) return e.error();
    return listed.left() == 0 ? scanned : int64_t{-1};
}

int64_t FolderIndex::cur_before(const IndexMeta& m) const {
    int64_t mtime = file_mtime_ns(dir_ + "/cur");
    return mtime > 0 && cur_known(m, mtime, now_ns()) ? mtime : 0;
}

void FolderIndex::cur_after(IndexMeta& m, int64_t before) const {
    if (before == 0) return;  // not known before: the next sync() compares
    int64_t after = file_mtime_ns(dir_ + "/cur");
    if (after < 0 || after == before) return;
    // The first change not checked by a listing yet starts the second
    // after which one listing checks the lot (cur_known()).
    bool was_dirty = m.cur_dirty_mtime != 0 && m.cur_dirty_mtime == before;
    m.cur_dirty_since = was_dirty ? m.cur_dirty_since : after;
    m.cur_dirty_mtime = after;
    m.cur_mtime = 0;
}

// cur/'s listing (mtime `scanned`) matched the records `seen` describes:
// recorded, unless another writer changed the index since.
Status FolderIndex::record_unchanged(const IndexMeta& seen, int64_t scanned) {
    IndexMeta next = seen;
    if (seen.cur_dirty_mtime == scanned && now_ns() - scanned < kTrustedAgeNs) {
        // The check of our own move's tick came while cur/ was still new
        // (deliveries keep coming): trusted for another second, then checked.
        next.cur_dirty_since = scanned;
    } else {
        record_listing(next, scanned);
    }
    if (next.cur_mtime == seen.cur_mtime && next.cur_dirty_mtime == seen.cur_dirty_mtime &&
        next.cur_dirty_since == seen.cur_dirty_since)
        return {};
    return write([&](lmdb::Txn& w) -> Status {
        auto now = read_meta(w);
        if (!now) return now.error();
        if (now->modseq != seen.modseq || now->uidnext != seen.uidnext || now->cur_mtime != seen.cur_mtime ||
            now->cur_dirty_mtime != seen.cur_dirty_mtime)
            return {};  // someone else synced
        now->cur_mtime = next.cur_mtime;
        now->cur_dirty_mtime = next.cur_dirty_mtime;
        now->cur_dirty_since = next.cur_dirty_since;
        return write_meta(w, *now);
    });
}

// sync() when new/ holds files and cur/ is as the index last saw it: the
// files of deliveries, whose records already name them as cur/ will
// (Incoming::into_new), are moved without listing cur/, so a delivery
// costs its own files and not the folder's size.  false: not applicable
// (cur/ changed meanwhile, a file in new/ the index does not name, a move
// that failed); the full pass follows.
Result<bool> FolderIndex::move_delivered(const std::string& new_dir, const std::string& cur_dir) {
    bool moved = false;
    auto st = write([&](lmdb::Txn& txn) -> Status {
        moved = false;
        auto m = read_meta(txn);
        if (!m) return m.error();
        // Under the writer lock: no other tern process moves files now.
        int64_t before = cur_before(*m);
        if (before == 0) {
            txn.abort();
            return {};
        }
        auto in_new = list_dir(new_dir);
        if (!in_new) return in_new.error();
        std::vector<std::pair<std::string, std::string>> moves;
        moves.reserve(in_new->size());
        for (auto& n : *in_new) {
            auto parsed = parse_message_name(n);
            std::string target = parsed.has_info ? n : n + ":2,";
            auto known = txn.get(names, parsed.base);
            if (!known) return known.error();
            std::optional<MessageRecord> rec;
            if (*known) {
                auto rec_raw = txn.get(msgs, **known);
                if (!rec_raw) return rec_raw.error();
                if (*rec_raw) rec = decode_record(**rec_raw);
            }
            if (!rec || rec->filename != target) {
                txn.abort();
                return {};
            }
            moves.emplace_back(std::move(n), std::move(target));
        }
        for (const auto& [from, to] : moves)
            if (!rename_no_replace(new_dir + "/" + from, cur_dir + "/" + to)) {
                txn.abort();
                return {};
            }
        moved = true;
        if (moves.empty()) return {};  // another process moved them
        cur_after(*m, before);
        return write_meta(txn, *m);
    });
    if (!st) return st.error();
    return moved;
}

Status FolderIndex::sync(RecentClaim* claim) {
    const std::string new_dir = dir_ + "/new", cur_dir = dir_ + "/cur";
    bool pending_new = dir_has_entries(new_dir);
    int64_t cur_mtime = file_mtime_ns(cur_dir);
    if (cur_mtime < 0) return errno_error("stat " + cur_dir);
    {
        auto txn = env_->begin_read();
        if (!txn) return txn.error();
        auto m = read_meta(*txn);
        if (!m) return m.error();
        if (cur_known(*m, cur_mtime, now_ns())) {
            if (!pending_new) return {};
            txn->abort();
            auto moved = move_delivered(new_dir, cur_dir);
            if (!moved) return moved.error();
            if (*moved) return {};
        } else if (!pending_new && m->uidvalidity != 0) {
            // cur/ may have changed: look before taking the write lock (and an
            // fsync'd commit) — usually nothing did, or only its mtime.
            auto quiet = unchanged_listing(*txn, cur_dir);
            if (!quiet) return quiet.error();
            if (*quiet >= 0) {
                IndexMeta seen = std::move(*m);
                txn->abort();
                return record_unchanged(seen, *quiet);
            }
        }
    }

    // Pass 1 (one transaction): new/ → cur/, renamed files, removed files.
    // Unknown files are collected and indexed in batches afterwards.
    std::vector<std::string> fresh;
    int64_t scanned_mtime = 0;
    // UIDNEXT as this process last wrote it: when a batch finds it
    // unchanged, no other process indexed a file since pass 1 found the
    // fresh names unknown (every writer that adds a name assigns a UID).
    // (Set only after a commit: a transaction run again after MDB_MAP_FULL
    // must not leave the value of an attempt that was not committed.)
    uint32_t written_uidnext = 0, committing_uidnext = 0;
    auto st = write([&](lmdb::Txn& txn) -> Status {
        fresh.clear();
        ViewDelta delta;
        auto m = read_meta(txn);
        if (!m) return m.error();
        init_meta(*m);
        move_all_new(new_dir, cur_dir);
        scanned_mtime = file_mtime_ns(cur_dir);  // before the listing: later changes move it on
        auto listing = list_cur(cur_dir);
        if (!listing) return listing.error();
        uint64_t modseq = m->modseq + 1;
        bool changed = false;
        std::vector<uint32_t> seen;
        seen.reserve(listing->size());
        // A new index (a folder's first SELECT) knows no name: no lookups.
        MDB_stat known_names{};
        if (int rc = mdb_stat(txn.get(), names.handle, &known_names); rc != 0) return lmdb::mdb_error("mdb_stat", rc);
        if (known_names.ms_entries == 0) {
            fresh = std::move(*listing);
            listing->clear();
        }
        for (auto& n : *listing) {
            auto parsed = parse_message_name(n);
            auto known = txn.get(names, parsed.base);
            if (!known) return known.error();
            if (!*known) {
                fresh.push_back(std::move(n));
                continue;
            }
            uint32_t uid = key_uid(**known);
            std::string key = uid_key(uid);
            auto rec_raw = txn.get(msgs, key);
            if (!rec_raw) return rec_raw.error();
            std::optional<MessageRecord> rec = *rec_raw ? decode_record(**rec_raw) : std::nullopt;
            if (!rec) {
                // A stale name entry: index the file afresh.
                (void)txn.del(names, parsed.base);
                fresh.push_back(std::move(n));
                continue;
            }
            seen.push_back(uid);
            if (rec->filename != n) {
                MessageRecord upd = *rec;
                upd.filename = n;
                uint8_t flags = flags_from_letters(parsed.letters);
                if (flags != rec->flags) {
                    upd.flags = flags;
                    upd.modseq = modseq;
                    changed = true;
                    m->count_out(uid, *rec);
                    m->count_in(uid, upd);
                    delta.put(uid, upd);
                }
                if (auto s = txn.put(msgs, key, encode_record(upd)); !s) return s;
            }
        }
        std::sort(seen.begin(), seen.end());
        // Records whose file is gone: expunged behind our back.
        std::vector<std::pair<uint32_t, std::string>> gone;
        {
            auto cur = txn.cursor(msgs);
            if (!cur) return cur.error();
            for (auto e = cur->first(); e && *e; e = cur->next()) {
                uint32_t uid = key_uid((*e)->key);
                if (std::binary_search(seen.begin(), seen.end(), uid)) continue;
                auto rec = decode_record((*e)->value);
                if (rec) m->count_out(uid, *rec);
                gone.emplace_back(uid, rec ? std::string(parse_message_name(rec->filename).base) : std::string());
            }
        }
        for (const auto& [uid, base] : gone) {
            std::string key = uid_key(uid);
            if (auto r = txn.del(msgs, key); !r) return r.error();
            if (auto r = txn.del(cache, key); !r) return r.error();
            delta.erase(uid);
            if (!base.empty()) {
                auto owner = txn.get(names, base);
                if (owner && *owner && key_uid(**owner) == uid) (void)txn.del(names, base);
            }
            if (auto s = txn.put(vanished, key, raw(modseq)); !s) return s;
            changed = true;
        }
        if (!gone.empty())
            if (auto s = bound_vanished(txn, *m); !s) return s;
        committing_uidnext = m->uidnext;
        // Only new files (a folder's first SELECT): nothing to write yet, the
        // batches below write the header, and a commit would cost an fsync.
        if (known_names.ms_entries == 0 && gone.empty() && !fresh.empty()) return {};
        if (changed) m->modseq = modseq;
        // The directory state is recorded only when nothing is left to index.
        if (fresh.empty()) record_listing(*m, scanned_mtime);
        return write_meta(txn, *m, &delta);
    });
    if (!st) return st;
    written_uidnext = committing_uidnext;
    if (fresh.empty()) return {};

    // Pass 2: unknown files in arrival order (names start with the time:
    // "<sec>.M<usec>..." compared number by number), indexed in batches.
    sort_by_arrival(fresh);
    // One buffer for every batch: a new one each time (25,000 entries of
    // ~200 bytes) was fresh memory from the kernel, a page fault per 4 KB.
    std::vector<ScannedFile> files;
    files.reserve(std::min(fresh.size(), kNameBatch));
    Fd cur_fd = open_dir(cur_dir);  // (not open: every file is unread, as when gone)
    for (size_t start = 0, end = 0; start < fresh.size(); start = end) {
        files.clear();
        size_t read = 0;
        while (end < fresh.size() && read < kBatch && files.size() < kNameBatch) {
            name_only(files.emplace_back(), std::move(fresh[end]));
            if (!files.back().ok) {
                std::string name = std::move(files.back().name);
                files.back() = scan_file(cur_fd.get(), name);
                ++read;
            }
            ++end;
        }
        bool last = end == fresh.size();
        st = write([&](lmdb::Txn& txn) -> Status {
            ViewDelta delta;
            auto m = read_meta(txn);
            if (!m) return m.error();
            init_meta(*m);
            uint64_t modseq = m->modseq + 1;
            bool changed = false;
            if (auto s = index_new_files(*this, txn, *m, delta, files, m->uidnext != written_uidnext, modseq, changed); !s)
                return s;
            if (changed) m->modseq = modseq;
            if (last) record_listing(*m, scanned_mtime);
            if (claim) *claim = {};  // (a run again after MDB_MAP_FULL)
            if (last && claim && m->counts_valid && m->uidnext - 1 > m->recent_uid) {
                // Every record is above the mark now: all unclaimed ones are taken.
                *claim = {m->recent_uid + 1, m->uidnext - 1, m->counts.unclaimed};
                m->recent_uid = m->uidnext - 1;
                m->counts.unclaimed = 0;
            }
            committing_uidnext = m->uidnext;
            return write_meta(txn, *m, &delta);
        });
        if (!st) return st;
        written_uidnext = committing_uidnext;
    }
    return sync_to_disk(*env_);
}

Result<bool> FolderIndex::build_first(RecentClaim* claim, const EarlyAnswer& early, IndexMeta& written) {
    const std::string new_dir = dir_ + "/new", cur_dir = dir_ + "/cur";
    bool answered = false, declined = false;
    size_t wanted_map = 0;
    // A new index's databases exist once this returns: created by the
    // build's commit, or by settle_creation() if there was none.
    bool committed = false;
    struct Settle {
        FolderIndex& idx;
        const bool& committed;
        ~Settle() { idx.settle_creation(committed); }
    } settle{*this, committed};
    // The map grown before the listing, from cur/'s size (a directory entry
    // takes at least 32 bytes for a Maildir name on ext4): growing it after
    // would mean listing twice.  (Where a directory's size says less, the
    // check after the listing grows it, before the answer.)
    struct stat cur_st {};
    if (::stat(cur_dir.c_str(), &cur_st) == 0) {
        size_t most = static_cast<size_t>(cur_st.st_size) / 32;
        if (auto g = env_->reserve(most * kEarlyBuildBytesPerMessage + kEarlyBuildMapSlack); !g) return g.error();
    }
    for (;;) {
        std::vector<ScannedFile> files;
        auto st = write([&](lmdb::Txn& txn) -> Status {
            // Run again after MDB_MAP_FULL: the client was told already, and
            // the folder may hold something else now.  Nothing is committed.
            if (answered) return Error{"the first index build filled its map after it answered"};
            declined = false;
            wanted_map = 0;
            // A new index's databases, created in this synced commit (not
            // one of their own: its sync was in the answer's path).
            if (uncreated_)
                if (auto s = open_databases(txn, MDB_CREATE); !s) return s;
            MDB_stat records{};
            if (int rc = mdb_stat(txn.get(), msgs.handle, &records); rc != 0) return lmdb::mdb_error("mdb_stat", rc);
            if (records.ms_entries != 0) {
                declined = true;  // another writer came first
                return {};
            }
            auto m = read_meta(txn);
            if (!m) return m.error();
            init_meta(*m);
            if (!m->counts_valid || !m->view_valid) {
                declined = true;  // an index of an older tern, records expunged
                return {};
            }
            move_all_new(new_dir, cur_dir);
            int64_t scanned_mtime = file_mtime_ns(cur_dir);  // before the listing: later changes move it on
            ++cur_listings_;
            auto listing = list_names(cur_dir, static_cast<size_t>(cur_st.st_size));
            if (!listing) return listing.error();
            const auto& listed = listing->names;
            if (listed.empty() || listed.size() > kMaxEarlyBuild) {
                declined = true;
                return {};
            }
            auto order = arrival_permutation(listed);
            files.clear();  // (a run again after MDB_MAP_FULL)
            files.reserve(listed.size());
            // Copied in arrival order, the order every pass after this reads
            // them in (left in the listing's order, each of those passes
            // missed the cache on every name).  This copy is the one pass
            // across the listing: prefetched ahead, a name's view and then
            // its bytes, where waiting for each miss took a fifth of the build.
            for (size_t i = 0; i < order.size(); ++i) {
                if (i + 16 < order.size()) __builtin_prefetch(&listed[order[i + 16]]);
                if (i + 8 < order.size()) __builtin_prefetch(listed[order[i + 8]].data());
                name_only(files.emplace_back(), std::string(listed[order[i]]));
                if (!files.back().ok) {
                    declined = true;  // a file to read: not before an answer
                    return {};
                }
            }
            listing = NameList{};  // not needed past here: freed before the writes
            // The map grown now, not by a run again after the answer.
            size_t wanted = files.size() * kEarlyBuildBytesPerMessage + kEarlyBuildMapSlack;
            if (env_->map_size() < wanted) {
                wanted_map = wanted;
                return {};
            }
            auto plan = plan_new_files(*this, txn, files, false);
            if (!plan) return plan.error();
            OpenAnswer answer = answer_of(*m, *plan);
            early(answer);
            answered = true;

            ViewDelta delta;
            bool changed = false;
            uint64_t modseq = m->modseq + 1;
            if (auto s = write_new_files(*this, txn, *m, delta, *plan, modseq, changed); !s) return s;
            m->modseq = modseq;
            record_listing(*m, scanned_mtime);
            if (claim) {
                *claim = {m->recent_uid + 1, m->uidnext - 1, m->counts.unclaimed};
                m->recent_uid = m->uidnext - 1;
                m->counts.unclaimed = 0;
            }
            if (auto s = write_meta(txn, *m, &delta); !s) return s;
            auto w = read_meta(txn, false);
            if (!w) return w.error();
            if (!told_is_written(answer, *w, claim ? claim->taken : w->counts.unclaimed))
                return Error{"the first index build wrote other figures than it answered"};
            written = std::move(*w);
            return {};
        });
        if (!st) return st.error();
        if (wanted_map == 0) break;
        // (Nothing was written: the databases, too, wait for the next run.)
        if (auto g = env_->reserve(wanted_map); !g) return g.error();
    }
    committed = true;
    if (declined) return false;
    if (auto s = sync_to_disk(*env_); !s) return s.error();
    return true;
}

Result<std::vector<uint32_t>> FolderIndex::adopt(std::vector<Incoming>& incoming, AdoptSyncs* deferred) {
    const std::string tmp_dir = dir_ + "/tmp", cur_dir = dir_ + "/cur", new_dir = dir_ + "/new";
    std::vector<std::string> final_names(incoming.size());
    // The directories whose entries changed (or may not be durable yet: an
    // earlier attempt's file found under the name).
    AdoptSyncs syncs;
    std::vector<uint32_t> uids;
    auto st = write([&](lmdb::Txn& txn) -> Status {
        uids.assign(incoming.size(), 0);
        ViewDelta delta;
        auto m = read_meta(txn);
        if (!m) return m.error();
        init_meta(*m);
        int64_t cur_was = cur_before(*m);
        uint64_t modseq = m->modseq + 1;
        auto puts = RecordPuts::open(*this, txn);
        if (!puts) return puts.error();
        for (size_t i = 0; i < incoming.size(); ++i) {
            Incoming& in = incoming[i];
            uint64_t kw = 0;
            for (const auto& k : in.keywords)
                if (auto bit = keyword_bit(*m, k, true)) kw |= uint64_t{1} << *bit;
            if (final_names[i].empty()) {
                // A run after MDB_MAP_FULL finds the file already renamed.
                if (in.earlier) continue;
                std::string base = (in.base.empty() ? maildir::unique_name() : in.base) + ",S=" +
                                   std::to_string(in.size) + ",W=" + std::to_string(in.crlf_size);
                std::string name = message_file_name(base, in.flags);
                bool to_new = in.into_new && in.flags == 0;
                (to_new ? syncs.new_dir : syncs.cur) = true;
                if (!rename_no_replace(tmp_dir + "/" + in.tmp_name, to_new ? new_dir + "/" + base : cur_dir + "/" + name)) {
                    if (errno == EEXIST && !in.base.empty()) in.earlier = true;
                    continue;
                }
                final_names[i] = name;
            }
            ScannedFile f;
            f.name = final_names[i];
            f.size = in.size;
            f.crlf_size = in.crlf_size;
            // (A copy: the transaction may run again after MDB_MAP_FULL.)
            if (in.cached) f.cache = std::make_unique<ParsedCache>(in.cache);
            f.cached = in.cached;
            if (auto s = index_file(*puts, *m, delta, f, in.flags, kw, in.internal_date, in.date_offset, modseq, uids[i]);
                !s)
                return s;
            if (auto s = txn.put(names, parse_message_name(f.name).base, uid_key(uids[i])); !s) return s;
        }
        m->modseq = modseq;
        cur_after(*m, cur_was);
        return write_meta(txn, *m, &delta);
    });
    if (!st) return st.error();
    if (deferred) {
        *deferred = syncs;
        return uids;
    }
    if (syncs.cur)
        if (auto s = sys::fsync_dir(cur_dir); !s) return s.error();
    if (syncs.new_dir)
        if (auto s = sys::fsync_dir(new_dir); !s) return s.error();
    if (auto s = sync_to_disk(*env_); !s) return s.error();
    return uids;
}

Result<size_t> FolderIndex::fill(const std::vector<uint32_t>& uids) {
    Fd cur_fd = open_dir(dir_ + "/cur");  // (not open: every file is unread, as when gone)
    size_t unread = 0;
    std::unique_ptr<sys::SyncPool> scan_pool;  // a second thread, for big batches
    for (size_t start = 0; start < uids.size(); start += kBatch) {
        size_t end = std::min(uids.size(), start + kBatch);
        std::vector<std::pair<uint32_t, ScannedFile>> files;
        {
            auto txn = env_->begin_read();
            if (!txn) return txn.error();
            for (size_t i = start; i < end; ++i) {
                auto raw = txn->get(msgs, uid_key(uids[i]));
                if (!raw) return raw.error();
                auto rec = *raw ? decode_record(**raw) : std::nullopt;
                if (!rec || rec->cached) continue;
                files.emplace_back(uids[i], ScannedFile{});
                files.back().second.name = rec->filename;
                files.back().second.crlf_size = rec->crlf_size;
            }
        }
        // Read and parse outside the lock; a file renamed meanwhile is read
        // at the next need.  A big batch on two threads: the parse is CPU,
        // and the first FETCH of a folder nobody read reads every file.
        auto scan_range = [&](size_t from, size_t to) {
            for (size_t i = from; i < to; ++i) {
                ScannedFile& f = files[i].second;
                // A size from the name is kept (below): not counted again.
                f = scan_file(cur_fd.get(), f.name, f.crlf_size == 0);
            }
            return Status{};
        };
        if (files.size() < kParallelScan) {
            (void)scan_range(0, files.size());
        } else {
            if (!scan_pool) scan_pool = std::make_unique<sys::SyncPool>(1);
            std::vector<sys::SyncPool::Job> jobs;
            for (size_t from = 0; from < files.size(); from += kParallelScan / 2)
                jobs.emplace_back([&, from] { return scan_range(from, std::min(files.size(), from + kParallelScan / 2)); });
            (void)scan_pool->run(std::move(jobs));
        }
        for (const auto& [uid, f] : files) unread += f.ok ? 0 : 1;
        auto st = write([&](lmdb::Txn& txn) -> Status {
            ViewDelta delta;
            auto m = read_meta(txn);
            if (!m) return m.error();
            bool sized = false, filled = false;
            for (const auto& [uid, f] : files) {
                if (!f.ok) continue;
                std::string key = uid_key(uid);
                auto raw = txn.get(msgs, key);
                if (!raw) return raw.error();
                auto rec = *raw ? decode_record(**raw) : std::nullopt;
                if (!rec || rec->cached) continue;
                MessageRecord upd = *rec;
                upd.cached = true;
                upd.internal_date = f.mtime;
                // The name's sizes are what other readers were told; keep them
                // unless the name had none.
                if (upd.size == 0 && upd.crlf_size == 0) {
                    upd.size = f.size;
                    upd.crlf_size = f.crlf_size;
                    m->count_out(uid, *rec);
                    m->count_in(uid, upd);
                    delta.put(uid, upd);
                    sized = true;
                }
                if (auto s = txn.put(msgs, key, encode_record(upd)); !s) return s;
                // Usually filled in UID order (a FETCH 1:*): appended.
                if (auto s = txn.put_ascending(cache, key, encode_cache(f.cache->view())); !s) return s;
                filled = true;
            }
            // The header did not change, but a commit must leave a copy of
            // it for the copy to count (read_meta()); no change, no commit.
            if (sized) return write_meta(txn, *m, &delta);
            return filled ? write_header_copy(txn) : Status{};
        });
        if (!st) return st.error();
    }
    return unread;
}

}  // namespace tern::mailstore
