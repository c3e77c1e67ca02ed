// qmgr's batched status writes on a worker thread (see bookkeeper.hpp).
#include "qmgr/bookkeeper.hpp"

#include <pthread.h>
#include <signal.h>

namespace tern::qmgr {

Bookkeeper::Bookkeeper(event_base* base, queue::Store& store) : store_(store) {
    hand_over_ev_ = event::timer(base, [this](short) { hand_over(); });
    done_ev_ = event::timer(base, [this](short) { finish(); });
    // The worker must never take the process's signals (libevent handles
    // them on the loop thread), so it starts with all of them blocked.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    worker_ = std::thread([this] { work(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Bookkeeper::~Bookkeeper() {
    hand_over();
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wakeup_.notify_one();
    worker_.join();  // the worker commits everything handed over before it stops
    finish();
}

void Bookkeeper::submit(queue::Change change, Done done) {
    local_.push_back({std::move(change), std::move(done), {}});
    ++in_flight_;
    // Runs after the callbacks already active in this loop iteration, so
    // the answers that arrived together are committed together.
    if (local_.size() == 1) hand_over_ev_.activate();
}

size_t Bookkeeper::in_flight() const { return in_flight_; }

void Bookkeeper::hand_over() {
    if (local_.empty()) return;
    {
        std::lock_guard lock(mutex_);
        for (auto& item : local_) todo_.push_back(std::move(item));
    }
    local_.clear();
    wakeup_.notify_one();
}

void Bookkeeper::work() {
    for (;;) {
        std::vector<Item> batch;
        {
            std::unique_lock lock(mutex_);
            wakeup_.wait(lock, [this] { return !todo_.empty() || stopping_; });
            if (todo_.empty()) return;  // stopping, nothing left
            batch.swap(todo_);
        }
        std::vector<queue::Change> changes;
        changes.reserve(batch.size());
        for (auto& item : batch) changes.push_back(std::move(item.change));
        std::vector<Status> results = store_.apply(changes);
        for (size_t i = 0; i < batch.size(); ++i) {
            batch[i].change = std::move(changes[i]);
            batch[i].status = results[i];
        }
        {
            std::lock_guard lock(mutex_);
            for (auto& item : batch) done_.push_back(std::move(item));
        }
        // Thread-safe: the base was created after event::enable_threads().
        done_ev_.activate();
    }
}

void Bookkeeper::finish() {
    std::vector<Item> done;
    {
        std::lock_guard lock(mutex_);
        done.swap(done_);
    }
    for (auto& item : done) {
        --in_flight_;
        item.done(item.status);
    }
}

}  // namespace tern::qmgr
