// RAII wrapper over LMDB: Env, Txn, Dbi, Cursor, with string_view keys/values.
//
// Several processes share one environment (every smtpd, qmgr, mailctl), and a
// process may use it from more than one thread (smtpd's group-commit worker
// writes while the loop thread reads).  Two things need care:
//
//  * Map growth.  A write that hits MDB_MAP_FULL is aborted, the map is
//    doubled with mdb_env_set_mapsize(), and the write is run again; write()
//    does this transparently.  LMDB requires that no transaction of this
//    process is active during mdb_env_set_mapsize(), so every Txn is
//    counted by the Env's ResizeGate and growth waits until none is open
//    (new transactions wait while a resize is under way, except in a thread
//    that already holds one, which could otherwise deadlock).
//  * Growth by another process.  The new size is recorded in the meta page
//    by the next commit; a process whose map is now too small gets
//    MDB_MAP_RESIZED from mdb_txn_begin and adopts the new size with
//    mdb_env_set_mapsize(env, 0) before retrying.  begin_read()/begin_write()
//    do that.  If the other process's growth has not yet been used, our own
//    MAP_FULL path adopts the larger recorded size first, then doubles.
//
// Growth is refused (an Error, never a deadlock) when the thread that needs
// it still holds another transaction of its own.
//
// A write-transaction Cursor must be destroyed before its Txn commits or
// aborts (LMDB frees write cursors at transaction end); scope them inside.
#pragma once

#include <lmdb.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "lib/core/result.hpp"

namespace tern::lmdb {

// "mdb_put: MDB_MAP_FULL: Environment mapsize limit reached"
Error mdb_error(std::string_view what, int rc);

struct Dbi {
    MDB_dbi handle = 0;
};

class Env;

// Counts this process's open transactions of one Env so that the map is
// only resized while none is open.
class ResizeGate {
public:
    void enter(bool thread_holds_txn);  // waits while a resize runs, unless thread_holds_txn
    void leave();
    void resize_begin();  // waits for every transaction to end; blocks new ones
    void resize_end();

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    int active_ = 0;
    bool resizing_ = false;
};

class Cursor {
public:
    struct Entry {
        std::string_view key;
        std::string_view value;
    };

    Cursor() = default;
    explicit Cursor(MDB_cursor* c) : cursor_(c) {}
    ~Cursor() { close(); }
    Cursor(Cursor&& o) noexcept : cursor_(std::exchange(o.cursor_, nullptr)) {}
    Cursor& operator=(Cursor&& o) noexcept {
        if (this != &o) {
            close();
            cursor_ = std::exchange(o.cursor_, nullptr);
        }
        return *this;
    }
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;

    // nullopt at the end of the database (MDB_NOTFOUND); Error otherwise.
    Result<std::optional<Entry>> first() { return op(MDB_FIRST); }
    Result<std::optional<Entry>> next() { return op(MDB_NEXT); }
    Result<std::optional<Entry>> last() { return op(MDB_LAST); }
    // First entry with key >= `key` (MDB_SET_RANGE).
    Result<std::optional<Entry>> seek(std::string_view key) { return op(MDB_SET_RANGE, key); }
    Result<std::optional<Entry>> op(MDB_cursor_op op, std::string_view key = {});
    Status del();  // deletes the entry under the cursor (write txns only)

    MDB_cursor* get() const { return cursor_; }
    void close();

private:
    MDB_cursor* cursor_ = nullptr;
};

class Txn;

// Puts keys that usually come in ascending order (UIDs as they are
// assigned, names sorted) through one cursor that stays on the last page:
// MDB_APPEND then compares with the last key only, and no put searches
// the tree from its root.  (Txn::put_ascending() opens a cursor per put:
// a first build of 100,000 records spent a fifth of its time there.)  A
// key that does not come last is put where it belongs.
class Appender {
public:
    Status put(std::string_view key, std::string_view value);

private:
    friend class Txn;
    Appender(const Txn& txn, Cursor cursor) : txn_(&txn), cursor_(std::move(cursor)) {}
    const Txn* txn_;
    Cursor cursor_;
};

class Txn {
public:
    Txn() = default;
    ~Txn() { abort(); }
    Txn(Txn&& o) noexcept;
    Txn& operator=(Txn&& o) noexcept;
    Txn(const Txn&) = delete;
    Txn& operator=(const Txn&) = delete;

    // Opens (MDB_CREATE in flags: creates) a named database.  The handle is
    // valid for the whole Env once this transaction commits.
    Result<Dbi> open_dbi(const char* name, unsigned flags = 0);

    // The view points into the map and is valid until the transaction ends
    // or (write txns) the next change.
    Result<std::optional<std::string_view>> get(Dbi dbi, std::string_view key) const;
    Status put(Dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
    // put() for a key that usually sorts after every key of the database
    // (UIDs as they are assigned, names in sorted order): MDB_APPEND goes
    // to the last page and compares with the last key only, where a plain
    // put searches the tree from its root (and keys in any other order
    // would split pages in half).  A key that does not come last is put as
    // put() would.
    Status put_ascending(Dbi dbi, std::string_view key, std::string_view value);
    // For many put_ascending()s into one database (valid while this
    // transaction is, like a cursor).
    Result<Appender> appender(Dbi dbi) const;
    Result<bool> del(Dbi dbi, std::string_view key);  // false: was not there
    Status clear(Dbi dbi);                            // empties the database
    Result<Cursor> cursor(Dbi dbi) const;

    Status commit();  // the txn is finished either way
    void abort();

    bool active() const { return txn_ != nullptr; }
    bool read_only() const { return read_only_; }
    // True once any operation of this transaction failed with MDB_MAP_FULL
    // (write() then grows the map and runs the transaction again).
    bool map_full() const { return map_full_; }
    MDB_txn* get() const { return txn_; }

private:
    friend class Env;
    friend class Appender;
    Txn(Env* env, MDB_txn* txn, bool read_only);
    Status check(std::string_view what, int rc) const;
    void end();

    Env* env_ = nullptr;
    MDB_txn* txn_ = nullptr;
    bool read_only_ = true;
    mutable bool map_full_ = false;
};

class Env {
public:
    struct Options {
        unsigned flags = 0;             // extra mdb_env_open flags (MDB_NOTLS is always added)
        unsigned max_dbs = 8;
        size_t map_size = size_t{64} << 20;  // initial; grows on demand
        unsigned max_readers = 510;
        unsigned mode = 0600;
        int max_grow = 24;              // growth steps tried by one write()
    };

    // path: an existing directory (or a file with MDB_NOSUBDIR).
    static Result<std::unique_ptr<Env>> open(const std::string& path, const Options& options);
    ~Env();
    Env(const Env&) = delete;
    Env& operator=(const Env&) = delete;

    Result<Txn> begin_read();
    Result<Txn> begin_write();

    // Runs fn in a write transaction and commits it.  On MDB_MAP_FULL (in fn
    // or in commit) the transaction is aborted, the map grown and fn run
    // again, so fn must only depend on what it reads inside the transaction.
    // Any other error aborts the transaction and is returned.
    Status write(const std::function<Status(Txn&)>& fn);

    // Doubles the map (after adopting a larger size another process set).
    // `seen` is the size the caller's failed transaction ran with; when the
    // map is already bigger than that (another thread grew it), nothing is
    // done.  0 = grow unconditionally.
    Status grow(size_t seen = 0);
    // Makes the map at least `bytes` (a writer that knows ahead how much it
    // will write, and must not be run again after MDB_MAP_FULL).  Like
    // grow(), refused while this thread holds a transaction.
    Status reserve(size_t bytes);
    size_t map_size() const;

    MDB_env* get() const { return env_; }

private:
    friend class Txn;
    Env(MDB_env* env, Options options) : env_(env), options_(options) {}
    Result<Txn> begin(bool read_only);
    Status adopt_map_size();

    MDB_env* env_ = nullptr;
    Options options_;
    ResizeGate gate_;
};

}  // namespace tern::lmdb
