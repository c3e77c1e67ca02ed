// Queue store: the LMDB records of queue.hpp and the body files beside them.
//
// Invariant kept by every write transaction here: the "due" database holds
// exactly one key (earliest next_try of a pending recipient, id) for each
// message that has a pending recipient and is not held, and nothing else.
// Holding a message removes its due key; releasing it puts the key back, so
// due() and next_due_time() never have to skip held mail.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <map>
#include <set>
#include <thread>

#include "lib/core/errno_text.hpp"
#include "lib/lmdb/lmdb.hpp"
#include "lib/log/log.hpp"
#include "lib/queue/commit_log.hpp"
#include "lib/queue/queue.hpp"
#include "lib/queue/records.hpp"
#include "lib/queue/spare.hpp"
#include "lib/sys/files.hpp"

namespace tern::queue {

namespace {

constexpr size_t kInitialMapSize = size_t{32} << 20;  // grows by doubling
constexpr time_t kStagingAge = 60;  // seconds before a commit log's .new is taken for a leftover

// Creates `path` if missing; a new directory's entry is made durable by
// syncing its parent (the spool layout must survive a crash like the mail).
Status make_dir(const std::string& path) {
    if (::mkdir(path.c_str(), 0700) != 0) {
        if (errno == EEXIST) return {};
        return errno_error("mkdir " + path);
    }
    size_t slash = path.find_last_of('/');
    std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    Fd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir || ::fsync(dir.get()) != 0) return errno_error("fsync " + parent);
    return {};
}

// Creates every msg/<h> directory (32 x 32 of them) up front, with one fsync
// of msg/ for all, so that create_body() never creates a directory and never
// waits for an fsync on the receiving process's event loop.  Skipped when the
// last one exists (they are made in order; a crash half-way leaves it
// missing, and the next open completes the set).  They belong to msg/'s
// owner: root tools (mailctl, sendmail) that open the queue first must not
// leave directories the queue owner cannot write.
Status make_hash_dirs(const std::string& msg) {
    constexpr std::string_view kAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";  // as in queue ids
    Fd dir(::open(msg.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat owner {}, last {};
    if (!dir || ::fstat(dir.get(), &owner) != 0) return errno_error("open " + msg);
    const char last_name[] = {kAlphabet.back(), kAlphabet.back(), 0};
    if (::fstatat(dir.get(), last_name, &last, 0) == 0) return {};
    const bool give_away = ::geteuid() == 0 && owner.st_uid != 0;
    bool created = false;
    for (char a : kAlphabet) {
        for (char b : kAlphabet) {
            const char name[] = {a, b, 0};
            if (::mkdirat(dir.get(), name, 0700) != 0) {
                if (errno == EEXIST) continue;
                return errno_error("mkdir " + msg + "/" + name);
            }
            created = true;
            if (give_away && ::fchownat(dir.get(), name, owner.st_uid, owner.st_gid, 0) != 0)
                return errno_error("chown " + msg + "/" + name);
        }
    }
    if (created && ::fsync(dir.get()) != 0) return errno_error("fsync " + msg);
    return {};
}

// <queue>/commitlog/ for the commit logs (commit_log.hpp), given to the queue's
// owner when root (mailctl, sendmail) makes it, as the hash directories.
Status make_log_dir(const std::string& queue_directory) {
    const std::string log = queue_directory + "/commitlog";
    struct stat owner {};
    if (::stat(queue_directory.c_str(), &owner) != 0) return errno_error("stat " + queue_directory);
    if (::access(log.c_str(), F_OK) == 0) return {};
    if (auto st = make_dir(log); !st) return st;
    if (::geteuid() == 0 && owner.st_uid != 0 && ::chown(log.c_str(), owner.st_uid, owner.st_gid) != 0)
        return errno_error("chown " + log);
    return {};
}

std::optional<int64_t> earliest_pending(const std::vector<Recipient>& recipients) {
    std::optional<int64_t> t;
    for (const auto& r : recipients)
        if (r.state == RecipientState::Pending && (!t || r.next_try < *t)) t = r.next_try;
    return t;
}

}  // namespace

struct Store::Impl {
    std::string dir;
    std::unique_ptr<SpareFiles> spares;
    std::unique_ptr<lmdb::Env> env;
    lmdb::Dbi env_db, rcpt_db, due_db, hold_db, body_db;
    lmdb::Dbi log_db;  // commit log name -> last sequence number inserted (u64 big-endian)
    size_t recovered = 0;

    // The records of one new message, due now; recipients numbered by
    // position.  Fails when the id is already in the queue.
    Status put_message(lmdb::Txn& txn, const Message& m, int64_t now) {
        const std::string& id = m.envelope.id;
        auto st = txn.put(env_db, id, records::encode_envelope(m.envelope), MDB_NOOVERWRITE);
        if (!st) return Error{id + ": " + st.message()};
        if (!m.small_body.empty())
            if (auto s = txn.put(body_db, id, m.small_body); !s) return s;
        // Recipients are numbered by position; next_try 0 means "now".
        std::vector<Recipient> rcpts = m.recipients;
        for (uint32_t i = 0; i < rcpts.size(); ++i) {
            rcpts[i].index = i;
            if (rcpts[i].next_try == 0) rcpts[i].next_try = now;
            if (auto s = txn.put(rcpt_db, records::rcpt_key(id, i), records::encode_recipient(rcpts[i])); !s)
                return s;
        }
        if (m.held) return txn.put(hold_db, id, {});
        return reindex(txn, id, std::nullopt, earliest_pending(rcpts));
    }

    // Reads the stored recipients of `id`, in index order.  Corrupt records
    // are reported and left out (so they are never delivered from garbage).
    Result<std::vector<Recipient>> recipients(const lmdb::Txn& txn, std::string_view id) const {
        std::vector<Recipient> out;
        auto cur = txn.cursor(rcpt_db);
        if (!cur) return cur.error();
        for (auto e = cur->seek(id); ; e = cur->next()) {
            if (!e) return e.error();
            if (!*e) break;
            auto key = records::split_rcpt_key((*e)->key);
            if (!key || key->first != id) break;
            if (auto r = records::decode_recipient(key->second, (*e)->value))
                out.push_back(std::move(*r));
            else
                log::warning("%.*s: corrupt recipient record #%u ignored", int(id.size()), id.data(),
                             key->second);
        }
        return out;
    }

    Result<bool> held(const lmdb::Txn& txn, std::string_view id) const {
        auto h = txn.get(hold_db, id);
        if (!h) return h.error();
        return h->has_value();
    }

    Result<std::optional<Message>> load(const lmdb::Txn& txn, std::string_view id) const {
        auto raw = txn.get(env_db, id);
        if (!raw) return raw.error();
        if (!*raw) return std::optional<Message>{};
        auto envelope = records::decode_envelope(id, **raw);
        if (!envelope) {
            log::warning("%.*s: corrupt envelope record", int(id.size()), id.data());
            return std::optional<Message>{};
        }
        Message m;
        m.envelope = std::move(*envelope);
        auto rcpts = recipients(txn, id);
        if (!rcpts) return rcpts.error();
        m.recipients = std::move(*rcpts);
        auto h = held(txn, id);
        if (!h) return h.error();
        m.held = *h;
        return std::optional<Message>{std::move(m)};
    }

    // Replaces the due key of `id` (old → new); either may be absent.
    Status reindex(lmdb::Txn& txn, std::string_view id, std::optional<int64_t> old_due,
                   std::optional<int64_t> new_due) {
        if (old_due == new_due) return {};
        if (old_due) {
            auto d = txn.del(due_db, records::due_key(*old_due, id));
            if (!d) return d.error();
        }
        if (new_due) return txn.put(due_db, records::due_key(*new_due, id), {});
        return {};
    }

    // The parts of update_recipients(), remove() and apply().  The outer
    // Result is a storage failure (abort the transaction); the inner Status
    // is this message's own refusal (gone, unknown recipient), made before
    // anything was written.
    Result<Status> update(lmdb::Txn& txn, std::string_view id, const std::vector<Recipient>& recipients) {
        auto exists = txn.get(env_db, id);
        if (!exists) return exists.error();
        if (!*exists) return Status{Error{std::string(id) + ": no such message in the queue"}};
        auto stored = this->recipients(txn, id);
        if (!stored) return stored.error();
        auto is_held = held(txn, id);
        if (!is_held) return is_held.error();
        std::optional<int64_t> old_due = *is_held ? std::nullopt : earliest_pending(*stored);

        std::map<uint32_t, Recipient> merged;
        for (auto& r : *stored) merged[r.index] = std::move(r);
        for (const auto& r : recipients)
            if (!merged.count(r.index))
                return Status{Error{std::string(id) + ": no recipient #" + std::to_string(r.index)}};
        for (const auto& r : recipients) {
            merged[r.index] = r;
            if (auto s = txn.put(rcpt_db, records::rcpt_key(id, r.index), records::encode_recipient(r)); !s)
                return s.error();
        }
        std::vector<Recipient> all;
        for (auto& [i, r] : merged) all.push_back(std::move(r));
        std::optional<int64_t> new_due = *is_held ? std::nullopt : earliest_pending(all);
        if (auto s = reindex(txn, id, old_due, new_due); !s) return s.error();
        return Status{};
    }

    // *file_body: whether the body is a file (not stored with the records).
    Result<Status> erase(lmdb::Txn& txn, std::string_view id, bool* file_body) {
        auto stored = this->recipients(txn, id);
        if (!stored) return stored.error();
        auto gone = txn.del(env_db, id);
        if (!gone) return gone.error();
        if (!*gone) return Status{Error{std::string(id) + ": no such message in the queue"}};
        if (auto d = txn.del(due_db, records::due_key(earliest_pending(*stored).value_or(0), id)); !d)
            return d.error();
        if (auto d = txn.del(hold_db, id); !d) return d.error();
        auto small = txn.del(body_db, id);
        if (!small) return small.error();
        *file_body = !*small;
        if (auto d = delete_recipients(txn, id); !d) return d.error();
        return Status{};
    }

    Status unlink_body(std::string_view id) const {
        if (!valid_queue_id(id)) return {};
        std::string path = dir + "/msg/" + std::string(id.substr(id.size() - 2)) + "/" + std::string(id);
        if (SpareFiles::recycle(dir + "/spare", path, id)) return {};
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_error("unlink " + path);
        return {};
    }

    Status delete_recipients(lmdb::Txn& txn, std::string_view id) {
        std::vector<std::string> keys;
        {
            auto cur = txn.cursor(rcpt_db);
            if (!cur) return cur.error();
            for (auto e = cur->seek(id);; e = cur->next()) {
                if (!e) return e.error();
                if (!*e) break;
                auto key = records::split_rcpt_key((*e)->key);
                if (!key || key->first != id) break;
                keys.emplace_back((*e)->key);
            }
        }  // a write cursor must be gone before the txn changes further
        for (const auto& k : keys)
            if (auto d = txn.del(rcpt_db, k); !d) return d.error();
        return {};
    }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const std::string& queue_directory) {
    auto impl = std::make_unique<Impl>();
    impl->dir = queue_directory;
    for (const auto& d : {queue_directory, queue_directory + "/db", queue_directory + "/msg"})
        if (auto st = make_dir(d); !st) return st.error();
    if (auto st = make_hash_dirs(queue_directory + "/msg"); !st) return st.error();
    // Not fatal here: a user's read-only look at the queue need not make it;
    // smtpd's Committer cannot start without it and says why.
    if (auto st = make_log_dir(queue_directory); !st) log::warning("queue: %s", st.message().c_str());

    lmdb::Env::Options options;
    options.max_dbs = 8;
    options.map_size = kInitialMapSize;
    // No MDB_NOSYNC / MDB_NOMETASYNC: every commit is synced (durability contract).
    auto env = lmdb::Env::open(queue_directory + "/db", options);
    if (!env) return env.error();
    impl->env = std::move(*env);

    Impl* p = impl.get();
    Status st = p->env->write([p](lmdb::Txn& txn) -> Status {
        for (auto [name, dbi] : {std::pair{"env", &p->env_db}, std::pair{"rcpt", &p->rcpt_db},
                                 std::pair{"due", &p->due_db}, std::pair{"hold", &p->hold_db},
                                 std::pair{"body", &p->body_db}, std::pair{"log", &p->log_db}}) {
            auto d = txn.open_dbi(name, MDB_CREATE);
            if (!d) return d.error();
            *dbi = *d;
        }
        return {};
    });
    if (!st) return Error{"queue " + queue_directory + ": " + st.message()};
    auto store = std::unique_ptr<Store>(new Store(std::move(impl)));
    // Whoever opens the queue first after a crash puts acknowledged messages
    // that only a dead process's commit log holds into the records.
    store->impl_->recovered = store->recover_logs();
    return store;
}

const std::string& Store::directory() const { return impl_->dir; }

std::string Store::body_path(std::string_view id) const {
    std::string_view hash = id.size() >= 2 ? id.substr(id.size() - 2) : std::string_view("00");
    return impl_->dir + "/msg/" + std::string(hash) + "/" + std::string(id);
}

Result<Fd> Store::create_body(std::string_view id) {
    if (!valid_queue_id(id)) return Error{"create_body: invalid queue id '" + std::string(id) + "'"};
    std::string path = body_path(id);
    if (impl_->spares)
        if (Fd spare = impl_->spares->take(path)) return spare;
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd && errno == ENOENT) {
        // The hash directory is missing (open() creates them all, so only
        // when someone removed it).  A new hash directory's own entry in
        // msg/ is synced by make_dir, or the body's fsync'd directory could
        // vanish in a crash.
        if (auto st = make_dir(path.substr(0, path.rfind('/'))); !st) return st.error();
        fd = Fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    }
    if (!fd) return errno_error("create " + path);
    return fd;
}

Status Store::keep_spare_bodies(size_t ready) {
    auto spares = SpareFiles::start(impl_->dir + "/spare", ready);
    if (!spares) return spares.error();
    impl_->spares = std::move(*spares);
    return {};
}

Result<std::optional<std::string>> Store::small_body(std::string_view id) const {
    if (!valid_queue_id(id)) return Error{"small_body: invalid queue id '" + std::string(id) + "'"};
    auto txn = impl_->env->begin_read();
    if (!txn) return txn.error();
    auto small = txn->get(impl_->body_db, id);
    if (!small) return small.error();
    if (!*small) return std::optional<std::string>();
    return std::optional<std::string>(std::string(**small));
}

Result<Fd> Store::open_body(std::string_view id) const {
    auto small = small_body(id);
    if (!small) return Error{"open_body: " + small.message()};
    if (*small) return sys::memory_file("tern-queue-body", **small);
    std::string path = body_path(id);
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return errno_error("open " + path);
    return fd;
}

Result<Fd> Store::open_body_dir(std::string_view id) const {
    if (!valid_queue_id(id)) return Error{"open_body_dir: invalid queue id '" + std::string(id) + "'"};
    std::string path = body_path(id);
    path.resize(path.rfind('/'));
    Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return errno_error("open " + path);
    return fd;
}

Status Store::insert(const std::vector<Message>& batch) {
    for (const auto& m : batch)
        if (!valid_queue_id(m.envelope.id)) return Error{"insert: invalid queue id '" + m.envelope.id + "'"};
    const int64_t now = ::time(nullptr);
    Impl* p = impl_.get();
    return p->env->write([&](lmdb::Txn& txn) -> Status {
        for (const auto& m : batch)
            if (auto st = p->put_message(txn, m, now); !st) return st;
        return {};
    });
}

Status Store::insert_logged(const std::vector<Message>& batch, std::string_view log, uint64_t seq) {
    const int64_t now = ::time(nullptr);
    Impl* p = impl_.get();
    return p->env->write([&](lmdb::Txn& txn) -> Status {
        for (const auto& m : batch) {
            // Acknowledged already: nothing may fail the batch but storage.
            // An id that is taken cannot come from a working smtpd (ids are
            // unique, the Committer refuses bad ones); keep the stored one.
            if (!valid_queue_id(m.envelope.id)) {
                log::error("commit log %.*s: invalid queue id '%s' skipped", int(log.size()), log.data(),
                           m.envelope.id.c_str());
                continue;
            }
            auto taken = txn.get(p->env_db, m.envelope.id);
            if (!taken) return taken.error();
            if (*taken) {
                log::error("%s: already in the queue; the logged copy is dropped", m.envelope.id.c_str());
                continue;
            }
            if (auto st = p->put_message(txn, m, now); !st) return st;
        }
        return txn.put(p->log_db, log, records::encode_checkpoint(seq));
    });
}

std::optional<Message> Store::load(std::string_view id) const {
    auto txn = impl_->env->begin_read();
    if (!txn) {
        log::warning("%.*s: queue read: %s", int(id.size()), id.data(), txn.message().c_str());
        return std::nullopt;
    }
    auto m = impl_->load(*txn, id);
    if (!m) {
        log::warning("%.*s: queue read: %s", int(id.size()), id.data(), m.message().c_str());
        return std::nullopt;
    }
    return std::move(*m);
}

std::vector<Message> Store::list_all() const {
    std::vector<Message> out;
    auto txn = impl_->env->begin_read();
    if (!txn) {
        log::warning("queue read: %s", txn.message().c_str());
        return out;
    }
    auto cur = txn->cursor(impl_->env_db);
    if (!cur) return out;
    for (auto e = cur->first(); e && *e; e = cur->next()) {
        auto m = impl_->load(*txn, (*e)->key);
        if (m && *m) out.push_back(std::move(**m));
    }
    return out;
}

std::vector<std::string> Store::due(int64_t now, size_t limit,
                                    const std::function<bool(std::string_view id)>& skip) const {
    std::vector<std::string> out;
    auto txn = impl_->env->begin_read();
    if (!txn) {
        log::warning("queue read: %s", txn.message().c_str());
        return out;
    }
    auto cur = txn->cursor(impl_->due_db);
    if (!cur) return out;
    for (auto e = cur->first(); e && *e && out.size() < limit; e = cur->next()) {
        auto key = records::split_due_key((*e)->key);
        if (!key) continue;
        if (key->first > now) break;
        if (skip && skip(key->second)) continue;
        out.emplace_back(key->second);
    }
    return out;
}

std::optional<int64_t> Store::next_due_time() const {
    auto txn = impl_->env->begin_read();
    if (!txn) return std::nullopt;
    auto cur = txn->cursor(impl_->due_db);
    if (!cur) return std::nullopt;
    auto e = cur->first();
    if (!e || !*e) return std::nullopt;
    auto key = records::split_due_key((*e)->key);
    if (!key) return std::nullopt;
    return key->first;
}

Status Store::update_recipients(std::string_view id, const std::vector<Recipient>& recipients) {
    Impl* p = impl_.get();
    return p->env->write([&](lmdb::Txn& txn) -> Status {
        auto found = p->update(txn, id, recipients);
        if (!found) return found.error();
        return *found;
    });
}

Status Store::remove(std::string_view id) {
    Impl* p = impl_.get();
    bool file_body = true;
    Status st = p->env->write([&](lmdb::Txn& txn) -> Status {
        auto found = p->erase(txn, id, &file_body);
        if (!found) return found.error();
        return *found;
    });
    if (!st) return st;
    // Only now: a crash before this line leaves an orphan body (cleaned up
    // later), never a record whose body is gone.
    return file_body ? p->unlink_body(id) : Status{};
}

std::vector<Status> Store::apply(const std::vector<Change>& changes) {
    Impl* p = impl_.get();
    std::vector<Status> out;
    std::vector<char> file_body;
    Status st = p->env->write([&](lmdb::Txn& txn) -> Status {
        out.clear();  // write() runs this again after growing the map
        file_body.assign(changes.size(), 1);
        for (size_t i = 0; i < changes.size(); ++i) {
            const Change& c = changes[i];
            bool file = true;
            auto found = c.remove ? p->erase(txn, c.id, &file) : p->update(txn, c.id, c.recipients);
            if (!found) return found.error();  // storage failure: the whole batch
            out.push_back(*found);
            file_body[i] = file;
        }
        return {};
    });
    if (!st) return std::vector<Status>(changes.size(), st);
    // After the commit, as in remove(); a body kept with the records went with them.
    for (size_t i = 0; i < changes.size(); ++i)
        if (changes[i].remove && out[i] && file_body[i])
            if (auto u = p->unlink_body(changes[i].id); !u) out[i] = u;
    return out;
}

Status Store::set_hold(std::string_view id, bool held) {
    Impl* p = impl_.get();
    return p->env->write([&](lmdb::Txn& txn) -> Status {
        auto exists = txn.get(p->env_db, id);
        if (!exists) return exists.error();
        if (!*exists) return Error{std::string(id) + ": no such message in the queue"};
        auto was_held = p->held(txn, id);
        if (!was_held) return was_held.error();
        if (*was_held == held) return {};
        auto stored = p->recipients(txn, id);
        if (!stored) return stored.error();
        auto pending = earliest_pending(*stored);
        if (held) {
            if (auto s = txn.put(p->hold_db, id, {}); !s) return s;
            return p->reindex(txn, id, pending, std::nullopt);
        }
        if (auto d = txn.del(p->hold_db, id); !d) return d.error();
        return p->reindex(txn, id, std::nullopt, pending);
    });
}

Status Store::set_all_due(int64_t when) {
    Impl* p = impl_.get();
    return p->env->write([&](lmdb::Txn& txn) -> Status {
        // Collect first: putting while a cursor walks the same database is
        // legal in LMDB but needlessly subtle.
        std::vector<std::pair<std::string, Recipient>> changed;
        std::set<std::string> pending_ids;
        {
            auto cur = txn.cursor(p->rcpt_db);
            if (!cur) return cur.error();
            for (auto e = cur->first();; e = cur->next()) {
                if (!e) return e.error();
                if (!*e) break;
                auto key = records::split_rcpt_key((*e)->key);
                if (!key) continue;
                auto r = records::decode_recipient(key->second, (*e)->value);
                if (!r || r->state != RecipientState::Pending) continue;
                r->next_try = when;
                pending_ids.emplace(key->first);
                changed.emplace_back(std::string((*e)->key), std::move(*r));
            }
        }
        for (const auto& [key, r] : changed)
            if (auto s = txn.put(p->rcpt_db, key, records::encode_recipient(r)); !s) return s;
        if (auto s = txn.clear(p->due_db); !s) return s;
        for (const auto& id : pending_ids) {
            auto h = p->held(txn, id);
            if (!h) return h.error();
            if (*h) continue;
            if (auto s = txn.put(p->due_db, records::due_key(when, id), {}); !s) return s;
        }
        return {};
    });
}

Result<uint64_t> Store::log_checkpoint(std::string_view log) const {
    auto txn = impl_->env->begin_read();
    if (!txn) return txn.error();
    auto value = txn->get(impl_->log_db, log);
    if (!value) return value.error();
    if (!*value) return uint64_t{0};
    return records::decode_checkpoint(**value).value_or(0);
}

Status Store::forget_log(std::string_view log) {
    Impl* p = impl_.get();
    return p->env->write([&](lmdb::Txn& txn) -> Status {
        auto gone = txn.del(p->log_db, log);
        if (!gone) return gone.error();
        return {};
    });
}

size_t Store::recovered_at_open() const { return impl_->recovered; }

// A log can be taken only when its owner is gone: the owner holds its
// flock() from before the file got its .log name until it exits.  Order of
// the end of a recovery: the records (with the checkpoint) committed, the
// file unlinked and that synced, and only then the checkpoint forgotten --
// a crash in between finds either the file with its checkpoint (nothing is
// replayed twice) or neither.
namespace {

// The names in a commit log directory; none when it is missing or not ours
// to read (a user's mailctl).
std::vector<std::string> log_directory_names(const std::string& dir) {
    std::vector<std::string> names;
    std::unique_ptr<DIR, int (*)(DIR*)> listing(::opendir(dir.c_str()), ::closedir);
    if (!listing) return names;
    while (dirent* d = ::readdir(listing.get())) names.emplace_back(d->d_name);
    return names;
}

}  // namespace

size_t Store::recover_logs() {
    const std::string dir = impl_->dir + "/commitlog";
    std::vector<std::string> names = log_directory_names(dir);
    if (names.empty()) return 0;

    size_t recovered = 0;
    std::set<std::string> present;
    for (const auto& file : names) {
        const bool staging = file.ends_with(".new");
        if (!staging && !file.ends_with(".log")) continue;
        const std::string name = file.substr(0, file.size() - 4), path = dir + "/" + file;
        present.insert(name);
        Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
        if (!fd || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;  // alive, or not ours
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0 || st.st_nlink == 0) continue;  // recovered meanwhile
        if (staging) {
            // Its creator died before the first record -- or is between
            // its create and its flock() this very moment: only an old one
            // goes (a creation takes well under a second).
            if (st.st_mtime < ::time(nullptr) - kStagingAge) ::unlink(path.c_str());
            continue;
        }
        auto checkpoint = log_checkpoint(name);
        auto records = checkpoint ? CommitLog::read(fd.get(), *checkpoint)
                                  : Result<std::vector<CommitLog::Record>>(checkpoint.error());
        if (!records) {
            log::error("commit log %s: %s; left for the next try", path.c_str(), records.message().c_str());
            continue;
        }
        std::vector<Message> messages;
        for (auto& r : *records)
            for (auto& m : r.messages) messages.push_back(std::move(m));
        if (!records->empty()) {
            if (Status st = insert_logged(messages, name, records->back().seq); !st) {
                log::error("commit log %s: %s; left for the next try", path.c_str(), st.message().c_str());
                continue;
            }
            for (const auto& m : messages)
                log::info("%s: recovered from the commit log of a stopped smtpd", m.envelope.id.c_str());
            recovered += messages.size();
        }
        if (::unlink(path.c_str()) != 0 || !sys::fsync_dir(dir)) continue;
        present.erase(name);
        (void)forget_log(name);  // else the stale-key pass below, next time
    }
    // Checkpoints whose file is gone for good (a crash between unlink and
    // forget): the unlinks are made durable first, then the keys go.  The
    // listing above is older than the keys read here: a log made since has
    // a checkpoint and no entry in it, so each file is looked for again
    // (names are random and never reused, and a key is only ever written
    // after its file exists).
    std::vector<std::string> stale;
    if (auto txn = impl_->env->begin_read()) {
        if (auto cur = txn->cursor(impl_->log_db))
            for (auto e = cur->first(); e && *e; e = cur->next())
                if (!present.count(std::string((*e)->key))) stale.emplace_back((*e)->key);
    }
    if (!stale.empty() && sys::fsync_dir(dir))
        for (const auto& name : stale) {
            struct stat st {};
            if (::stat((dir + "/" + name + ".log").c_str(), &st) != 0 && errno == ENOENT) (void)forget_log(name);
        }
    return recovered;
}

std::vector<std::string> Store::orphan_bodies(int64_t min_age_seconds) const {
    std::vector<std::string> out;
    const int64_t cutoff = int64_t(::time(nullptr)) - min_age_seconds;
    std::string msg = impl_->dir + "/msg";
    std::unique_ptr<DIR, int (*)(DIR*)> top(::opendir(msg.c_str()), ::closedir);
    if (!top) return out;
    std::vector<std::string> candidates;
    while (dirent* d = ::readdir(top.get())) {
        std::string_view hash = d->d_name;
        if (hash == "." || hash == "..") continue;
        std::string sub = msg + "/" + std::string(hash);
        std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(sub.c_str()), ::closedir);
        if (!dir) continue;
        while (dirent* f = ::readdir(dir.get())) {
            std::string_view name = f->d_name;
            if (!valid_queue_id(name) || name.substr(name.size() - 2) != hash) continue;
            struct stat st {};
            if (::fstatat(dirfd(dir.get()), f->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
            if (!S_ISREG(st.st_mode) || st.st_mtime > cutoff) continue;
            candidates.emplace_back(name);
        }
    }
    // The records are checked after the scan: a body inserted meanwhile has
    // its record by now, and one still being received is younger than min_age.
    auto txn = impl_->env->begin_read();
    if (!txn) return out;
    for (auto& id : candidates) {
        auto rec = txn->get(impl_->env_db, id);
        if (rec && !*rec) out.push_back(std::move(id));
    }
    return out;
}

bool Store::wait_for_logged(std::chrono::milliseconds limit) const {
    const std::string dir = impl_->dir + "/commitlog";
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (const auto& file : log_directory_names(dir)) {
        if (!file.ends_with(".log")) continue;
        const std::string name = file.substr(0, file.size() - 4);
        Fd fd(::open((dir + "/" + file).c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) continue;
        // A log nobody holds was replayed by open() (or its owner is just
        // gone, and the next opener replays it): nothing to wait for.
        if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) continue;
        auto checkpoint = log_checkpoint(name);
        if (!checkpoint) continue;
        auto records = CommitLog::read(fd.get(), *checkpoint);
        if (!records || records->empty()) continue;
        const uint64_t last = records->back().seq;
        for (;;) {
            auto now_at = log_checkpoint(name);
            if (!now_at || *now_at >= last) break;
            if (std::chrono::steady_clock::now() >= deadline) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    }
    return true;
}

}  // namespace tern::queue
