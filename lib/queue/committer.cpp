// Group commit (see committer.hpp): a small pool of threads makes new bodies
// durable in parallel, one commit thread writes their records in batches,
// and every result goes back to the event loop thread.
//
// Durability order for one message, matching the contract in DESIGN.md:
//   1. two sync threads: fsync() of the body's hash directory (the entry
//      created by Store::create_body), started by entry_created() while the
//      content still streams in, and fdatasync() of the body at submit();
//   2. once both returned, the commit thread: the records of every message
//      whose body is durable, all in one LMDB transaction committed with sync;
//   3. only then its Done runs (and smtpd answers 250).
// The two syncs of step 1 are independent: either may reach the disk first,
// and until step 2 no record names the file, so a crash between them leaves
// at most an orphan body (removed by qmgr), never a record without its body.
// Starting the directory sync early takes one disk round trip off each
// message's way to the 250 (docs/queue.md, "Durability contract").
// The two stages overlap: while the commit thread syncs batch k, the sync
// threads already work on the bodies of batch k+1, so throughput is set by
// the slower stage, not by their sum.
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
// A message that fails any step gets the error and its body file is
// unlinked, so no body is left for a message the client was told failed.
#include "lib/queue/committer.hpp"

#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "lib/core/errno_text.hpp"
#include "lib/log/log.hpp"
#include "lib/queue/commit_timing.hpp"
#include "lib/sys/fault.hpp"

namespace tern::queue {

namespace {
// Sync threads per Committer.  They sleep in the kernel while the disk
// works, not on a CPU; 8 is where the measured rate stopped growing with
// 20 concurrent sessions (more threads only make larger journal commits).
constexpr int kSyncThreads = 8;
}  // namespace

struct Committer::Pending {
    std::string id;          // set at creation, then only read (the early directory sync)
    Message message;         // from submit() on
    Fd body;
    Done done;
    Status result;           // guarded by Impl::mutex
    int syncs_left = 2;      // guarded by Impl::mutex: body and directory
    CommitStamps stamps{};   // only when CommitTiming::enabled()
};

struct Committer::Impl {
    using Shared = std::shared_ptr<Pending>;
    // One sync for a sync thread: the body's data, or its directory entry.
    struct SyncJob {
        Shared submission;
        bool directory = false;
    };

    Impl(event_base* b, Store& s) : base(b), store(s) {}

    event_base* base;
    Store& store;
    const bool timed = CommitTiming::enabled();
    CommitTiming timing;                     // loop thread, batches under mutex
    std::mutex mutex;
    std::condition_variable sync_wakeup;     // sync threads: to_sync not empty or stop
    std::condition_variable commit_wakeup;   // commit thread: synced not empty or stop
    std::condition_variable batch_done;      // destructor: finished not empty
    std::deque<SyncJob> to_sync;             // guarded by mutex; syncs not yet started
    std::vector<Shared> synced;              // guarded by mutex; body and entry durable (or failed)
    std::vector<Shared> finished;            // guarded by mutex; Done not yet run
    size_t syncing = 0;                      // guarded by mutex; held by a sync thread right now
    bool stopping = false;                   // guarded by mutex
    std::atomic<size_t> in_flight{0};
    ::event* done_event = nullptr;
    std::vector<std::thread> sync_threads;
    std::thread commit_thread;

    void stamp(Pending& s, CommitStamp which) {
        if (timed) s.stamps[size_t(which)] = CommitTiming::now_ns();
    }
    void sync_loop();
    Status sync_one(Pending& s, bool directory);
    void queue_sync(Shared s, bool directory);
    void commit_loop();
    void commit(std::vector<Shared>& batch);
    void run_finished();
    static void on_done(evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->run_finished(); }
};

void Committer::Impl::sync_loop() {
    for (;;) {
        SyncJob job;
        {
            std::unique_lock lock(mutex);
            sync_wakeup.wait(lock, [this] { return stopping || !to_sync.empty(); });
            if (to_sync.empty()) return;  // stopping, and nothing is left
            job = std::move(to_sync.front());
            to_sync.pop_front();
            ++syncing;
        }
        Pending& s = *job.submission;
        Status st = sync_one(s, job.directory);
        bool both = false;
        {
            std::lock_guard lock(mutex);
            if (!st && s.result) s.result = std::move(st);
            // The body's job is queued only by submit(), so "both done"
            // means submitted too; an abandoned ticket stops at one.
            both = --s.syncs_left == 0;
            if (both) synced.push_back(std::move(job.submission));
            --syncing;
        }
        if (both) commit_wakeup.notify_one();
    }
}

// Step 1 for one message, one half: the body's data, or its directory
// entry.  The entry exists since create_body(), so an fsync of the directory
// that starts now covers it.  (The hash directory's own entry in msg/ was
// made durable when Store created it.)  The directory half reads only the
// id, which never changes, so it may run before submit() filled in the
// rest; s.result is written under the mutex by the caller.
Status Committer::Impl::sync_one(Pending& s, bool directory) {
    // Submissions that cannot be committed (caller bugs) fail alone.
    if (!valid_queue_id(s.id)) return Error{"invalid queue id '" + s.id + "'"};
    if (directory) {
        stamp(s, CommitStamp::DirStart);
        auto dir = store.open_body_dir(s.id);
        if (!dir) return dir.error();
        if (::fsync(dir->get()) != 0) return errno_error("fsync directory of " + store.body_path(s.id));
        stamp(s, CommitStamp::DirEnd);
        return {};
    }
    if (!s.body) return Error{s.id + ": no body file"};
    stamp(s, CommitStamp::BodyStart);
    if (::fdatasync(s.body.get()) != 0) return errno_error("fdatasync " + store.body_path(s.id));
    stamp(s, CommitStamp::BodyEnd);
    return {};
}

void Committer::Impl::queue_sync(Shared s, bool directory) {
    {
        std::lock_guard lock(mutex);
        to_sync.push_back(SyncJob{std::move(s), directory});
    }
    sync_wakeup.notify_one();
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
    std::vector<Message> messages;
    for (auto& s : batch) {
        stamp(*s, CommitStamp::CommitStart);
        // Both syncs are done: the body fd is no longer needed.
        if (s->result && s->message.envelope.size == 0) {
            struct stat st {};
            if (::fstat(s->body.get(), &st) == 0) s->message.envelope.size = uint64_t(st.st_size);
        }
        s->body.reset();
        if (s->result) messages.push_back(s->message);
    }
    if (!messages.empty()) {
        sys::fault_point("COMMIT_BEFORE_RECORD");  // tests: bodies durable, no record yet
        Status st = store.insert(messages);
        if (!st) {
            log::error("queue commit of %zu message(s) failed: %s", messages.size(), st.message().c_str());
            for (auto& s : batch)
                if (s->result) s->result = st;
        }
    }
    for (auto& s : batch) stamp(*s, CommitStamp::Committed);

    // Failed messages must leave no body behind (an invalid id names no
    // file of ours: never unlink a path built from it).
    for (auto& s : batch)
        if (!s->result && valid_queue_id(s->message.envelope.id))
            ::unlink(store.body_path(s->message.envelope.id).c_str());
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

Committer::Committer(event_base* base, Store& store) : impl_(std::make_unique<Impl>(base, store)) {
    impl_->done_event = event_new(base, -1, EV_PERSIST, &Impl::on_done, impl_.get());
    if (!impl_->done_event) log::fatal("committer: event_new failed");
    // The threads must never take the process's signals (libevent handles
    // them on the loop thread), so they start with all of them blocked.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < kSyncThreads; ++i)
        impl_->sync_threads.emplace_back([impl = impl_.get()] { impl->sync_loop(); });
    impl_->commit_thread = std::thread([impl = impl_.get()] { impl->commit_loop(); });
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
    event_free(impl_->done_event);
    if (std::string line = impl_->timing.summary(); !line.empty()) log::info("%s", line.c_str());
}

Committer::Ticket Committer::entry_created(const std::string& id) {
    auto s = std::make_shared<Pending>();
    s->id = id;
    impl_->queue_sync(s, true);
    return s;
}

void Committer::submit(Ticket ticket, Message message, Fd body, Done done) {
    // While commits are outstanding the done event stays added (with a
    // long timeout it never needs), so that event_base_dispatch() does not
    // return for lack of events before the completions have run.
    if (impl_->in_flight++ == 0) {
        timeval hour{3600, 0};
        event_add(impl_->done_event, &hour);
    }
    // A ticket is for this message's body only (else its directory sync
    // covered another file): without a matching one, sync the entry now.
    const bool early = ticket && ticket->id == message.envelope.id;
    Impl::Shared s = early ? std::move(ticket) : std::make_shared<Pending>();
    if (!early) s->id = message.envelope.id;
    s->message = std::move(message);
    s->body = std::move(body);
    s->done = std::move(done);
    impl_->stamp(*s, CommitStamp::Submitted);
    if (!early) impl_->queue_sync(s, true);
    impl_->queue_sync(std::move(s), false);
}

size_t Committer::in_flight() const { return impl_->in_flight.load(); }

}  // namespace tern::queue
