// LMDB wrapper implementation: transactions, cursors, and map growth that is
// safe across the threads of this process and picked up by other processes.
#include "lib/lmdb/lmdb.hpp"


namespace tern::lmdb {

namespace {

// Transactions this thread holds (of any Env).  Growing the map needs all of
// this process's transactions to end; if the growing thread holds one itself
// the exclusive lock would never be granted, so growth is refused instead.
thread_local int t_open_txns = 0;

MDB_val to_val(std::string_view s) {
    return MDB_val{s.size(), const_cast<char*>(s.data())};
}

std::string_view from_val(const MDB_val& v) {
    return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

}  // namespace

// ---- ResizeGate ---------------------------------------------------------

void ResizeGate::enter(bool thread_holds_txn) {
    std::unique_lock lock(mutex_);
    if (!thread_holds_txn) changed_.wait(lock, [this] { return !resizing_; });
    ++active_;
}

void ResizeGate::leave() {
    std::lock_guard lock(mutex_);
    if (--active_ == 0) changed_.notify_all();
}

void ResizeGate::resize_begin() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return !resizing_; });
    resizing_ = true;
    changed_.wait(lock, [this] { return active_ == 0; });
}

void ResizeGate::resize_end() {
    std::lock_guard lock(mutex_);
    resizing_ = false;
    changed_.notify_all();
}

Error mdb_error(std::string_view what, int rc) {
    return Error{std::string(what) + ": " + mdb_strerror(rc)};
}

// ---- Cursor -------------------------------------------------------------

void Cursor::close() {
    if (cursor_) mdb_cursor_close(cursor_);
    cursor_ = nullptr;
}

Result<std::optional<Cursor::Entry>> Cursor::op(MDB_cursor_op op, std::string_view key) {
    MDB_val k = to_val(key), v{0, nullptr};
    int rc = mdb_cursor_get(cursor_, &k, &v, op);
    if (rc == MDB_NOTFOUND) return std::optional<Entry>{};
    if (rc != 0) return mdb_error("mdb_cursor_get", rc);
    return std::optional<Entry>{Entry{from_val(k), from_val(v)}};
}

Status Cursor::del() {
    int rc = mdb_cursor_del(cursor_, 0);
    if (rc != 0) return mdb_error("mdb_cursor_del", rc);
    return {};
}

// ---- Txn ----------------------------------------------------------------

// The caller has entered env->gate_ for this transaction.
Txn::Txn(Env* env, MDB_txn* txn, bool read_only) : env_(env), txn_(txn), read_only_(read_only) {
    ++t_open_txns;
}

Txn::Txn(Txn&& o) noexcept
    : env_(std::exchange(o.env_, nullptr)),
      txn_(std::exchange(o.txn_, nullptr)),
      read_only_(o.read_only_),
      map_full_(o.map_full_) {}

Txn& Txn::operator=(Txn&& o) noexcept {
    if (this != &o) {
        abort();
        env_ = std::exchange(o.env_, nullptr);
        txn_ = std::exchange(o.txn_, nullptr);
        read_only_ = o.read_only_;
        map_full_ = o.map_full_;
    }
    return *this;
}

void Txn::end() {
    txn_ = nullptr;
    --t_open_txns;
    env_->gate_.leave();
}

void Txn::abort() {
    if (!txn_) return;
    mdb_txn_abort(txn_);
    end();
}

Status Txn::commit() {
    if (!txn_) return Error{"mdb_txn_commit: transaction not active"};
    int rc = mdb_txn_commit(txn_);  // frees the txn even on failure
    end();
    return check("mdb_txn_commit", rc);
}

Status Txn::check(std::string_view what, int rc) const {
    if (rc == 0) return {};
    if (rc == MDB_MAP_FULL) map_full_ = true;
    return mdb_error(what, rc);
}

Result<Dbi> Txn::open_dbi(const char* name, unsigned flags) {
    Dbi dbi;
    int rc = mdb_dbi_open(txn_, name, flags, &dbi.handle);
    if (rc != 0) return mdb_error(std::string("mdb_dbi_open ") + (name ? name : "(main)"), rc);
    return dbi;
}

Result<std::optional<std::string_view>> Txn::get(Dbi dbi, std::string_view key) const {
    MDB_val k = to_val(key), v{0, nullptr};
    int rc = mdb_get(txn_, dbi.handle, &k, &v);
    if (rc == MDB_NOTFOUND) return std::optional<std::string_view>{};
    if (rc != 0) return mdb_error("mdb_get", rc);
    return std::optional<std::string_view>{from_val(v)};
}

Status Txn::put(Dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
    MDB_val k = to_val(key), v = to_val(value);
    return check("mdb_put", mdb_put(txn_, dbi.handle, &k, &v, flags));
}

Status Txn::put_ascending(Dbi dbi, std::string_view key, std::string_view value) {
    MDB_val k = to_val(key), v = to_val(value);
    int rc = mdb_put(txn_, dbi.handle, &k, &v, MDB_APPEND);
    if (rc == MDB_KEYEXIST) {  // not after the last key: nothing was written
        k = to_val(key);
        v = to_val(value);
        rc = mdb_put(txn_, dbi.handle, &k, &v, 0);
    }
    return check("mdb_put", rc);
}

Result<Appender> Txn::appender(Dbi dbi) const {
    auto c = cursor(dbi);
    if (!c) return c.error();
    return Appender(*this, std::move(*c));
}

Status Appender::put(std::string_view key, std::string_view value) {
    MDB_val k = to_val(key), v = to_val(value);
    int rc = mdb_cursor_put(cursor_.get(), &k, &v, MDB_APPEND);
    if (rc == MDB_KEYEXIST) {  // not after the last key: nothing was written
        k = to_val(key);
        v = to_val(value);
        rc = mdb_cursor_put(cursor_.get(), &k, &v, 0);
    }
    return txn_->check("mdb_cursor_put", rc);
}

Result<bool> Txn::del(Dbi dbi, std::string_view key) {
    MDB_val k = to_val(key);
    int rc = mdb_del(txn_, dbi.handle, &k, nullptr);
    if (rc == MDB_NOTFOUND) return false;
    if (auto st = check("mdb_del", rc); !st) return st.error();
    return true;
}

Status Txn::clear(Dbi dbi) {
    return check("mdb_drop", mdb_drop(txn_, dbi.handle, 0));
}

Result<Cursor> Txn::cursor(Dbi dbi) const {
    MDB_cursor* c = nullptr;
    int rc = mdb_cursor_open(txn_, dbi.handle, &c);
    if (rc != 0) return mdb_error("mdb_cursor_open", rc);
    return Cursor(c);
}

// ---- Env ----------------------------------------------------------------

Result<std::unique_ptr<Env>> Env::open(const std::string& path, const Options& options) {
    MDB_env* raw = nullptr;
    int rc = mdb_env_create(&raw);
    if (rc != 0) return mdb_error("mdb_env_create", rc);
    // Owns raw until the Env takes it.
    std::unique_ptr<MDB_env, void (*)(MDB_env*)> guard(raw, mdb_env_close);
    if ((rc = mdb_env_set_maxdbs(raw, options.max_dbs)) != 0) return mdb_error("mdb_env_set_maxdbs", rc);
    if ((rc = mdb_env_set_maxreaders(raw, options.max_readers)) != 0)
        return mdb_error("mdb_env_set_maxreaders", rc);
    if ((rc = mdb_env_set_mapsize(raw, options.map_size)) != 0) return mdb_error("mdb_env_set_mapsize", rc);
    // MDB_NOTLS: read slots belong to the Txn, not the thread, so one thread
    // may hold several read transactions and threads may share the Env.
    rc = mdb_env_open(raw, path.c_str(), options.flags | MDB_NOTLS, options.mode);
    if (rc != 0) return mdb_error("mdb_env_open " + path, rc);
    // Reader slots left by crashed processes would pin old pages forever.
    int dead = 0;
    mdb_reader_check(raw, &dead);
    // An existing environment may already be larger than options.map_size:
    // adopt what the meta page records.
    if ((rc = mdb_env_set_mapsize(raw, 0)) != 0) return mdb_error("mdb_env_set_mapsize", rc);
    return std::unique_ptr<Env>(new Env(guard.release(), options));
}

Env::~Env() {
    if (env_) mdb_env_close(env_);
}

size_t Env::map_size() const {
    MDB_envinfo info{};
    mdb_env_info(env_, &info);
    return info.me_mapsize;
}

Status Env::adopt_map_size() {
    if (t_open_txns > 0)
        return Error{"lmdb: map was resized by another process, but this thread still holds a transaction"};
    gate_.resize_begin();
    int rc = mdb_env_set_mapsize(env_, 0);
    gate_.resize_end();
    if (rc != 0) return mdb_error("mdb_env_set_mapsize", rc);
    return {};
}

Status Env::grow(size_t seen) {
    if (t_open_txns > 0)
        return Error{"lmdb: map is full and cannot grow while this thread holds a transaction"};
    gate_.resize_begin();
    struct End {
        ResizeGate& g;
        ~End() { g.resize_end(); }
    } end{gate_};
    size_t current = map_size();
    if (seen != 0 && current > seen) return {};  // another thread already grew it
    // Adopt a size another process recorded; if that is already larger than
    // what our failed transaction saw, it is enough.
    int rc = mdb_env_set_mapsize(env_, 0);
    if (rc != 0) return mdb_error("mdb_env_set_mapsize", rc);
    size_t adopted = map_size();
    if (adopted > current) return {};
    rc = mdb_env_set_mapsize(env_, current * 2);
    if (rc != 0) return mdb_error("mdb_env_set_mapsize (grow)", rc);
    return {};
}

Status Env::reserve(size_t bytes) {
    while (map_size() < bytes)
        if (auto g = grow(map_size()); !g) return g;
    return {};
}

Result<Txn> Env::begin(bool read_only) {
    for (int attempt = 0; attempt < 3; ++attempt) {
        gate_.enter(t_open_txns > 0);
        MDB_txn* txn = nullptr;
        int rc = mdb_txn_begin(env_, nullptr, read_only ? MDB_RDONLY : 0, &txn);
        if (rc == 0) return Txn(this, txn, read_only);
        gate_.leave();
        if (rc != MDB_MAP_RESIZED) return mdb_error("mdb_txn_begin", rc);
        if (auto st = adopt_map_size(); !st) return st.error();
    }
    return Error{"mdb_txn_begin: map keeps being resized"};
}

Result<Txn> Env::begin_read() { return begin(true); }
Result<Txn> Env::begin_write() { return begin(false); }

Status Env::write(const std::function<Status(Txn&)>& fn) {
    for (int attempt = 0;; ++attempt) {
        size_t seen = map_size();
        auto txn = begin_write();
        if (!txn) return txn.error();
        Status st = fn(*txn);
        if (st) {
            if (txn->active()) st = txn->commit();
            if (st) return st;
        }
        bool full = txn->map_full();
        txn->abort();
        if (!full) return st;
        if (attempt >= options_.max_grow) return Error{st.message() + " (map size " + std::to_string(seen) + ")"};
        if (auto g = grow(seen); !g) return g;
    }
}

}  // namespace tern::lmdb
