// Group commit (see committer.hpp): a worker thread makes batches of new
// messages durable and hands each result back to the event loop thread.
//
// Durability order for one batch, matching the contract in DESIGN.md:
//   1. bodies and their directory entries on disk: one syncfs() of the spool
//      file system for batches of kSyncfsBatch or more (one flush is cheaper
//      than many), else fdatasync() per body and fsync() per distinct body
//      directory;
//   2. all records in one LMDB transaction committed with sync;
//   3. only then every Done runs (and smtpd answers 250).
// A message that fails any step gets the error and its body file is
// unlinked, so no body is left for a message the client was told failed.
#include "lib/queue/committer.hpp"

#include <event2/event.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "lib/core/errno_text.hpp"
#include "lib/log/log.hpp"

namespace tern::queue {

namespace {
constexpr size_t kSyncfsBatch = 4;
}

struct Committer::Impl {
    struct Submission {
        Message message;
        Fd body;
        Done done;
        Status result;
    };

    Impl(event_base* b, Store& s) : base(b), store(s) {}

    event_base* base;
    Store& store;
    std::mutex mutex;
    std::condition_variable wakeup;          // worker: new submissions or stop
    std::condition_variable batch_done;      // destructor: finished not empty
    std::deque<Submission> queued;           // guarded by mutex
    std::vector<Submission> finished;        // guarded by mutex; Done not yet run
    bool stopping = false;                   // guarded by mutex
    std::atomic<size_t> in_flight{0};
    ::event* done_event = nullptr;
    std::thread worker;

    void run();
    void commit(std::vector<Submission>& batch);
    void run_finished();
    static void on_done(evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->run_finished(); }
};

void Committer::Impl::run() {
    for (;;) {
        std::vector<Submission> batch;
        {
            std::unique_lock lock(mutex);
            wakeup.wait(lock, [this] { return stopping || !queued.empty(); });
            if (queued.empty()) return;  // stopping, and everything is committed
            for (auto& s : queued) batch.push_back(std::move(s));
            queued.clear();
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

void Committer::Impl::commit(std::vector<Submission>& batch) {
    // 0. Submissions that cannot be committed (caller bugs) fail alone.
    int any_body = -1;
    for (auto& s : batch) {
        if (!valid_queue_id(s.message.envelope.id))
            s.result = Error{"invalid queue id '" + s.message.envelope.id + "'"};
        else if (!s.body)
            s.result = Error{s.message.envelope.id + ": no body file"};
        else
            any_body = s.body.get();
    }

    // 1. Bodies and directory entries.
    if (batch.size() >= kSyncfsBatch && any_body >= 0) {
        // One flush of the whole spool file system covers every body and
        // every new directory entry (the bodies all live under msg/).
        if (::syncfs(any_body) != 0) {
            Error e = errno_error("syncfs " + store.directory());
            for (auto& s : batch)
                if (s.result) s.result = e;
        }
    } else {
        std::set<std::string> dirs_done;
        for (auto& s : batch) {
            if (!s.result) continue;
            const std::string& id = s.message.envelope.id;
            if (::fdatasync(s.body.get()) != 0) {
                s.result = errno_error("fdatasync " + store.body_path(id));
                continue;
            }
            std::string path = store.body_path(id);
            std::string dir = path.substr(0, path.rfind('/'));
            if (dirs_done.count(dir)) continue;
            auto dfd = store.open_body_dir(id);
            if (!dfd) {
                s.result = dfd.error();
            } else if (::fsync(dfd->get()) != 0) {
                s.result = errno_error("fsync " + dir);
            } else {
                dirs_done.insert(dir);
            }
        }
    }
    for (auto& s : batch) {
        if (s.result && s.message.envelope.size == 0) {
            struct stat st {};
            if (::fstat(s.body.get(), &st) == 0) s.message.envelope.size = uint64_t(st.st_size);
        }
        s.body.reset();
    }

    // 2. Records of every message whose body is durable, one synced commit.
    std::vector<Message> messages;
    for (auto& s : batch)
        if (s.result) messages.push_back(s.message);
    if (!messages.empty()) {
        Status st = store.insert(messages);
        if (!st) {
            log::error("queue commit of %zu message(s) failed: %s", messages.size(), st.message().c_str());
            for (auto& s : batch)
                if (s.result) s.result = st;
        }
    }

    // Failed messages must leave no body behind (an invalid id names no
    // file of ours: never unlink a path built from it).
    for (auto& s : batch)
        if (!s.result && valid_queue_id(s.message.envelope.id))
            ::unlink(store.body_path(s.message.envelope.id).c_str());
}

void Committer::Impl::run_finished() {
    std::vector<Submission> done;
    {
        std::lock_guard lock(mutex);
        done.swap(finished);
    }
    for (auto& s : done) {
        if (--in_flight == 0) event_del(done_event);
        if (s.done) s.done(s.result);
    }
}

Committer::Committer(event_base* base, Store& store) : impl_(std::make_unique<Impl>(base, store)) {
    impl_->done_event = event_new(base, -1, EV_PERSIST, &Impl::on_done, impl_.get());
    if (!impl_->done_event) log::fatal("committer: event_new failed");
    // The worker must never take the process's signals (libevent handles
    // them on the loop thread), so it starts with all of them blocked.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    impl_->worker = std::thread([impl = impl_.get()] { impl->run(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Committer::~Committer() {
    // Every submission gets its answer: wait for the outstanding batches and
    // run their completions here (we are on the loop thread).  A completion
    // may submit again; that is committed too before the thread stops.
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
    impl_->wakeup.notify_one();
    impl_->worker.join();
    event_free(impl_->done_event);
}

void Committer::submit(Message message, Fd body, Done done) {
    // While commits are outstanding the done event stays added (with a
    // long timeout it never needs), so that event_base_dispatch() does not
    // return for lack of events before the completions have run.
    if (impl_->in_flight++ == 0) {
        timeval hour{3600, 0};
        event_add(impl_->done_event, &hour);
    }
    {
        std::lock_guard lock(impl_->mutex);
        impl_->queued.push_back(Impl::Submission{std::move(message), std::move(body), std::move(done), {}});
    }
    impl_->wakeup.notify_one();
}

size_t Committer::in_flight() const { return impl_->in_flight.load(); }

}  // namespace tern::queue
