// Group commit (see committer.hpp): a small pool of threads makes new bodies
// durable in parallel, one commit thread writes their records in batches to
// the commit log, one store thread inserts the logged batches into LMDB,
// and every result goes back to the event loop thread.
//
// Durability order for one message, matching the contract in DESIGN.md and
// docs/queue.md:
//   1. a sync thread: fdatasync() of the body at submit() (a body of at most
//      4 KiB is read instead, to travel in the records);
//   2. the commit thread, for a batch of such messages: one fsync() of each
//      hash directory their entries are in (Store::create_body made them),
//      then the records of all of them as one record of the commit log,
//      written with one fdatasync() (commit_log.hpp);
//   3. only then its Done runs (and smtpd answers 250);
//   4. the store thread inserts logged batches into LMDB (a synced
//      transaction that also stores the log's checkpoint), and then
//      on_stored runs (smtpd wakes qmgr: a message is delivered from LMDB).
// Until the log record is synced nothing names the file, so a crash before
// that leaves at most an orphan body (removed by qmgr), never a record
// without its body.  After step 2 a crash leaves the log: the next
// Store::open replays it.  The LMDB commit syncs twice (pages, then meta);
// the log record once -- that is what the 250 no longer waits for.  The
// directory fsyncs are per batch, not per message: queue ids of one process
// share a hash directory for ~65 ms (queue_id.cpp), so a batch usually needs
// one, where an fsync per message cost a disk flush and two writes each
// (docs/queue.md, "Durability contract"; docs/performance.md).
// The stages overlap: while the commit thread syncs batch k, the sync
// threads already work on the bodies of batch k+1 and the store thread
// inserts batch k-1, so throughput is set by the slowest stage.
//
// Why parallel fdatasync rather than one syncfs() per batch (the first
// version): syncfs() flushes every dirty page of the whole file system,
// including other processes' writes (mailboxes being delivered, logs, a
// compiler), so its cost is unbounded by our own work; and one thread doing
// fdatasync after fdatasync pays a full journal commit per body.  Concurrent
// fdatasync() calls from several threads are merged by the file system's
// journal (ext4/jbd2, xfs log) into a few commits, so K threads give nearly
// K bodies per journal commit, and only for our own files.  See
// docs/performance.md for the measurements.
//
// A message that fails any step up to 2 gets the error and its body file is
// unlinked, so no body is left for a message the client was told failed.
// A failure of step 4 is retried (the client has its 250): the batch stays
// in the log, which is not reused past it, until LMDB takes it.
#include "lib/queue/committer.hpp"

#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "lib/core/errno_text.hpp"
#include "lib/log/log.hpp"
#include "lib/queue/commit_log.hpp"
#include "lib/queue/commit_timing.hpp"
#include "lib/sys/fault.hpp"

namespace tern::queue {

namespace {
// Sync threads per Committer.  They sleep in the kernel while the disk
// works, not on a CPU; 8 is where the measured rate stopped growing with
// 20 concurrent sessions (more threads only make larger journal commits).
constexpr int kSyncThreads = 8;
// The store thread's transactions are at least this far apart.  Nobody
// waits for them but qmgr, and each costs two disk flushes and its page
// writes whatever its size: at 6,000 messages/s, 10 ms gathers ~60
// messages per transaction where back-to-back ones held about one log
// batch (~5); the disk requests per message fell from ~7 to ~5 and accept
// rose ~10% (docs/performance.md, seventh pass).  A message arriving after
// a quiet spell is stored at once.
constexpr auto kStoreInterval = std::chrono::milliseconds(10);
}  // namespace

struct Committer::Pending {
    std::string id;          // message.envelope.id, read by the commit thread
    Message message;         // from submit() on
    Fd body;
    Done done;
    Status result;           // guarded by Impl::mutex
    CommitStamps stamps{};   // only when CommitTiming::enabled()
};

struct Committer::Impl {
    using Shared = std::shared_ptr<Pending>;

    Impl(event_base* b, Store& s, std::unique_ptr<CommitLog> l) : base(b), store(s), log(std::move(l)) {}

    // A logged record, waiting for the store thread.
    struct Logged {
        uint64_t seq;
        std::vector<Message> messages;
    };

    event_base* base;
    Store& store;
    std::unique_ptr<CommitLog> log;
    std::function<void(std::vector<std::string>)> on_stored;  // loop thread
    const bool timed = CommitTiming::enabled();
    CommitTiming timing;                     // loop thread, batches under mutex
    std::mutex mutex;
    std::condition_variable sync_wakeup;     // sync threads: to_sync not empty or stop
    std::condition_variable commit_wakeup;   // commit thread: synced not empty or stop
    std::condition_variable batch_done;      // destructor: finished not empty
    std::condition_variable store_wakeup;    // store thread: logged not empty or log_done
    std::vector<Logged> logged;              // guarded by mutex; in the log, not yet in LMDB
    bool log_done = false;                   // guarded by mutex; the commit thread ended
    std::vector<std::string> stored_ids;     // guarded by mutex; in LMDB, on_stored not run yet
    std::deque<Shared> to_sync;              // guarded by mutex; bodies not yet synced
    std::vector<Shared> synced;              // guarded by mutex; body durable (or failed)
    std::vector<Shared> finished;            // guarded by mutex; Done not yet run
    size_t syncing = 0;                      // guarded by mutex; held by a sync thread right now
    bool stopping = false;                   // guarded by mutex
    std::atomic<size_t> in_flight{0};
    ::event* done_event = nullptr;
    ::event* stored_event = nullptr;
    std::vector<std::thread> sync_threads;
    std::thread commit_thread;
    std::thread store_thread;

    void stamp(Pending& s, CommitStamp which) {
        if (timed) s.stamps[size_t(which)] = CommitTiming::now_ns();
    }
    void sync_loop();
    Status admit(const Pending& s) const;
    Status sync_body(Pending& s);
    void commit_loop();
    void sync_directories(std::vector<Shared>& batch);
    void commit(std::vector<Shared>& batch);
    size_t write_log(const std::vector<const Message*>& messages, Status* failure);
    void store_loop();
    void run_finished();
    static void on_done(evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->run_finished(); }
    static void on_store(evutil_socket_t, short, void* arg);
};

void Committer::Impl::sync_loop() {
    for (;;) {
        Shared job;
        {
            std::unique_lock lock(mutex);
            sync_wakeup.wait(lock, [this] { return stopping || !to_sync.empty(); });
            if (to_sync.empty()) return;  // stopping, and nothing is left
            job = std::move(to_sync.front());
            to_sync.pop_front();
            ++syncing;
        }
        Status st = sync_body(*job);
        {
            std::lock_guard lock(mutex);
            if (!st && job->result) job->result = std::move(st);
            synced.push_back(std::move(job));
            --syncing;
        }
        commit_wakeup.notify_one();
    }
}

// Submissions that cannot be committed (caller bugs) fail alone: an invalid
// id, no body at all, an in-memory body too large for the records.
Status Committer::Impl::admit(const Pending& s) const {
    if (!valid_queue_id(s.id)) return Error{"invalid queue id '" + s.id + "'"};
    if (!s.body && s.message.small_body.empty()) return Error{s.id + ": no body file"};
    if (!s.body && s.message.small_body.size() > kSmallBodyMax)
        return Error{s.id + ": an in-memory body above " + std::to_string(kSmallBodyMax) + " bytes"};
    return {};
}

// Step 1 for one message with a body file: its body's data -- synced in its
// file, or, for a small body, read to travel in the records' transaction
// (then neither the file nor its directory entry needs to be durable).
// A body submitted in memory (Message::small_body, no file) skips this step.
Status Committer::Impl::sync_body(Pending& s) {
    if (Status admitted = admit(s); !admitted) return admitted;
    stamp(s, CommitStamp::BodyStart);
    struct stat st {};
    if (::fstat(s.body.get(), &st) != 0) return errno_error("fstat " + store.body_path(s.id));
    if (st.st_size > 0 && size_t(st.st_size) <= kSmallBodyMax) {
        std::string& copy = s.message.small_body;
        copy.resize(size_t(st.st_size));
        ssize_t n = ::pread(s.body.get(), copy.data(), copy.size(), 0);
        if (n != st.st_size) return errno_error("read " + store.body_path(s.id));
    } else if (::fdatasync(s.body.get()) != 0) {
        return errno_error("fdatasync " + store.body_path(s.id));
    }
    if (s.message.envelope.size == 0) s.message.envelope.size = uint64_t(st.st_size);
    stamp(s, CommitStamp::BodyEnd);
    return {};
}

void Committer::Impl::commit_loop() {
    for (;;) {
        std::vector<Shared> batch;
        {
            std::unique_lock lock(mutex);
            commit_wakeup.wait(lock, [this] {
                return !synced.empty() || (stopping && to_sync.empty() && syncing == 0);
            });
            if (synced.empty()) return;  // stopping, and everything is committed
            batch.swap(synced);
            if (timed) timing.add_batch();
        }
        commit(batch);
        {
            std::lock_guard lock(mutex);
            for (auto& s : batch) finished.push_back(std::move(s));
        }
        batch_done.notify_all();
        // Thread-safe because the base was created after evthread_use_pthreads().
        event_active(done_event, EV_READ, 0);
    }
}

// Step 2 for a batch whose bodies and entries are durable.
void Committer::Impl::commit(std::vector<Shared>& batch) {
    for (auto& s : batch) stamp(*s, CommitStamp::CommitStart);
    sync_directories(batch);
    std::vector<const Message*> messages;
    std::vector<Pending*> owners;  // of messages[i]
    for (auto& s : batch) {
        s->body.reset();  // synced or copied: no longer needed
        if (s->result) {
            messages.push_back(&s->message);
            owners.push_back(s.get());
        }
    }
    if (!messages.empty()) {
        sys::fault_point("COMMIT_BEFORE_RECORD");  // tests: bodies durable, no record yet
        Status failure;
        size_t logged_count = write_log(messages, &failure);
        if (logged_count < messages.size()) {
            log::error("queue commit of %zu message(s) failed: %s", messages.size() - logged_count,
                       failure.message().c_str());
            for (size_t i = logged_count; i < messages.size(); ++i) owners[i]->result = failure;
        }
    }
    for (auto& s : batch) stamp(*s, CommitStamp::Committed);

    // Failed messages must leave no body behind (an invalid id names no
    // file of ours: never unlink a path built from it).
    for (auto& s : batch)
        if (!s->result && valid_queue_id(s->message.envelope.id))
            ::unlink(store.body_path(s->message.envelope.id).c_str());
}

// The batch into the log, a record at a time, each synced and handed to
// the store thread at once (so that a batch larger than the log's free
// space waits only for LMDB to take its own earlier records).  Returns how
// many messages, from the front, are logged; the rest failed with
// *failure.  A record whose sync failed may still be replayed after a
// crash: a message the client was told failed and may send again (a
// duplicate, never a loss).
size_t Committer::Impl::write_log(const std::vector<const Message*>& messages, Status* failure) {
    size_t done = 0;
    while (done < messages.size()) {
        auto appended = log->append(messages, done);
        if (!appended) {
            *failure = appended.error();
            break;
        }
        Logged record{appended->seq, {}};
        for (size_t i = done; i < done + appended->count; ++i) record.messages.push_back(*messages[i]);
        done += appended->count;
        {
            std::lock_guard lock(mutex);
            logged.push_back(std::move(record));
        }
        store_wakeup.notify_one();
    }
    return done;
}

// Step 4: logged batches into LMDB, everything waiting in one transaction,
// at most one transaction per kStoreInterval.
// The client has its 250 already, so a failure (EIO, a full disk for the
// map) is retried, not reported to anyone but the log.
void Committer::Impl::store_loop() {
    auto last = std::chrono::steady_clock::time_point{};
    for (;;) {
        std::vector<Logged> records;
        {
            std::unique_lock lock(mutex);
            store_wakeup.wait(lock, [this] { return !logged.empty() || log_done; });
            if (logged.empty()) return;  // the commit thread ended and all is stored
            if (!log_done && std::chrono::steady_clock::now() < last + kStoreInterval) {
                lock.unlock();  // more batches gather meanwhile
                std::this_thread::sleep_until(last + kStoreInterval);
                lock.lock();
            }
            records.swap(logged);
        }
        std::vector<Message> messages;
        for (auto& r : records)
            for (auto& m : r.messages) messages.push_back(std::move(m));
        const uint64_t seq = records.back().seq;
        sys::fault_point("COMMIT_BEFORE_STORE");  // tests: logged (250 may be out), not in LMDB
        for (int attempt = 1;; ++attempt) {
            Status st = store.insert_logged(messages, log->name(), seq);
            if (st) break;
            log::error("queue: %zu logged message(s) not yet in the queue database (try %d): %s",
                       messages.size(), attempt, st.message().c_str());
            // Stopping: the log stays as it is, and the next Store::open
            // replays it (the destructor keeps a log that is not drained).
            std::unique_lock lock(mutex);
            if (store_wakeup.wait_for(lock, std::chrono::seconds(1), [this] { return log_done; })) return;
        }
        log->checkpointed(seq);
        last = std::chrono::steady_clock::now();
        {
            std::lock_guard lock(mutex);
            for (const auto& m : messages) stored_ids.push_back(m.envelope.id);
        }
        event_active(stored_event, EV_READ, 0);
    }
}

void Committer::Impl::on_store(evutil_socket_t, short, void* arg) {
    auto* impl = static_cast<Impl*>(arg);
    std::vector<std::string> ids;
    {
        std::lock_guard lock(impl->mutex);
        ids.swap(impl->stored_ids);
    }
    if (!ids.empty() && impl->on_stored) impl->on_stored(std::move(ids));
}

// Step 2, first half: the entries of the batch's bodies.  They exist since
// create_body(), so an fsync of their directory that starts now covers them
// all; one per distinct hash directory.  (The hash directory's own entry in
// msg/ was made durable when Store created it.)
void Committer::Impl::sync_directories(std::vector<Shared>& batch) {
    // hash directory -> a message in it, and the result of its fsync
    std::map<std::string, std::pair<const Pending*, Status>> dirs;
    for (auto& s : batch) {
        stamp(*s, CommitStamp::DirStart);  // every message, so that the stage is timed even when empty
        // Failed messages' ids may not even be valid; small bodies' files are
        // never read after the commit.
        if (!s->result || !s->message.small_body.empty()) continue;
        dirs.emplace(s->id.substr(s->id.size() - 2), std::make_pair(s.get(), Status{}));
    }
    for (auto& [hash, entry] : dirs) {
        auto& [member, result] = entry;
        auto dir = store.open_body_dir(member->id);
        if (!dir) result = dir.error();
        else if (::fsync(dir->get()) != 0) result = errno_error("fsync directory of " + store.body_path(member->id));
    }
    for (auto& s : batch) {
        stamp(*s, CommitStamp::DirEnd);
        if (!s->result || !s->message.small_body.empty()) continue;
        if (const Status& r = dirs[s->id.substr(s->id.size() - 2)].second; !r) s->result = r;
    }
}

void Committer::Impl::run_finished() {
    std::vector<Shared> done;
    {
        std::lock_guard lock(mutex);
        done.swap(finished);
    }
    if (!done.empty()) sys::fault_point("COMMIT_BEFORE_REPLY");  // tests: records committed, no 250 yet
    for (auto& s : done) {
        if (--in_flight == 0) event_del(done_event);
        if (timed) {
            stamp(*s, CommitStamp::Done);
            timing.add(s->stamps);
        }
        if (s->done) s->done(s->result);
    }
}

Committer::Committer(event_base* base, Store& store) {
    auto log = CommitLog::create(store.directory());
    if (!log) log::fatal("queue: cannot make a commit log: %s", log.message().c_str());
    impl_ = std::make_unique<Impl>(base, store, std::move(*log));
    impl_->done_event = event_new(base, -1, EV_PERSIST, &Impl::on_done, impl_.get());
    impl_->stored_event = event_new(base, -1, 0, &Impl::on_store, impl_.get());
    if (!impl_->done_event || !impl_->stored_event) log::fatal("committer: event_new failed");
    // The threads must never take the process's signals (libevent handles
    // them on the loop thread), so they start with all of them blocked.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < kSyncThreads; ++i)
        impl_->sync_threads.emplace_back([impl = impl_.get()] { impl->sync_loop(); });
    impl_->commit_thread = std::thread([impl = impl_.get()] { impl->commit_loop(); });
    impl_->store_thread = std::thread([impl = impl_.get()] { impl->store_loop(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Committer::~Committer() {
    // Every submission gets its answer: wait for the outstanding batches and
    // run their completions here (we are on the loop thread).  A completion
    // may submit again; that is committed too before the threads stop.
    for (;;) {
        {
            std::unique_lock lock(impl_->mutex);
            if (impl_->in_flight == 0) break;
            impl_->batch_done.wait(lock, [this] { return !impl_->finished.empty(); });
        }
        impl_->run_finished();
    }
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
    }
    impl_->sync_wakeup.notify_all();
    impl_->commit_wakeup.notify_all();
    for (auto& t : impl_->sync_threads) t.join();
    impl_->commit_thread.join();
    {
        std::lock_guard lock(impl_->mutex);
        impl_->log_done = true;
    }
    impl_->store_wakeup.notify_all();
    impl_->store_thread.join();
    // Everything is in LMDB: the log goes.  (Otherwise it stays, and the
    // next Store::open puts the rest in.)
    if (impl_->log->drained()) {
        // A checkpoint left behind (forget_log failed) is dropped by the
        // next recover_logs(): its file is gone.
        if (Status st = impl_->log->remove(); st) (void)impl_->store.forget_log(impl_->log->name());
        else log::warning("queue: %s", st.message().c_str());
    }
    event_free(impl_->done_event);
    event_free(impl_->stored_event);
    if (std::string line = impl_->timing.summary(); !line.empty()) log::info("%s", line.c_str());
}

void Committer::submit(Message message, Fd body, Done done) {
    // While commits are outstanding the done event stays added (with a
    // long timeout it never needs), so that event_base_dispatch() does not
    // return for lack of events before the completions have run.
    if (impl_->in_flight++ == 0) {
        timeval hour{3600, 0};
        event_add(impl_->done_event, &hour);
    }
    auto s = std::make_shared<Pending>();
    s->id = message.envelope.id;
    s->message = std::move(message);
    s->body = std::move(body);
    s->done = std::move(done);
    impl_->stamp(*s, CommitStamp::Submitted);
    // A body that is only in memory has nothing to sync: straight to the
    // commit thread, without a hop through a sync thread.
    const bool in_memory = !s->body && !s->message.small_body.empty();
    if (in_memory) {
        impl_->stamp(*s, CommitStamp::BodyStart);  // nothing to sync: the body stages take no time
        impl_->stamp(*s, CommitStamp::BodyEnd);
        s->result = impl_->admit(*s);
        if (s->message.envelope.size == 0) s->message.envelope.size = s->message.small_body.size();
    }
    {
        std::lock_guard lock(impl_->mutex);
        if (in_memory) impl_->synced.push_back(std::move(s));
        else impl_->to_sync.push_back(std::move(s));
    }
    if (in_memory) impl_->commit_wakeup.notify_one();
    else impl_->sync_wakeup.notify_one();
}

size_t Committer::in_flight() const { return impl_->in_flight.load(); }

void Committer::on_stored(std::function<void(std::vector<std::string>)> callback) { impl_->on_stored = std::move(callback); }

}  // namespace tern::queue
