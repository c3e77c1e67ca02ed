// SyncPool: see sync_pool.hpp.
#include "lib/sys/sync_pool.hpp"

#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace tern::sys {

struct SyncPool::Impl {
    std::mutex mutex;
    std::condition_variable work;  // workers: a job is waiting, or stop
    std::condition_variable idle;  // run(): the last job finished
    std::vector<Job>* jobs = nullptr;    // guarded by mutex; the current run's jobs
    std::vector<Status>* results = nullptr;
    size_t next = 0;      // guarded by mutex; first job not taken yet
    size_t running = 0;   // guarded by mutex; jobs taken, not finished
    bool stopping = false;
    std::vector<std::thread> threads;

    // Takes and runs jobs until none is left; the lock is held on entry and exit.
    void drain(std::unique_lock<std::mutex>& lock) {
        while (jobs && next < jobs->size()) {
            size_t i = next++;
            ++running;
            Job& job = (*jobs)[i];
            lock.unlock();
            Status s = job();
            lock.lock();
            (*results)[i] = std::move(s);
            if (--running == 0 && next >= jobs->size()) idle.notify_all();
        }
    }

    void worker() {
        std::unique_lock lock(mutex);
        for (;;) {
            work.wait(lock, [this] { return stopping || (jobs && next < jobs->size()); });
            if (stopping) return;
            drain(lock);
        }
    }
};

SyncPool::SyncPool(int threads) : impl_(std::make_unique<Impl>()) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < threads; ++i) impl_->threads.emplace_back([impl = impl_.get()] { impl->worker(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

SyncPool::~SyncPool() {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
    }
    impl_->work.notify_all();
    for (auto& t : impl_->threads) t.join();
}

std::vector<Status> SyncPool::run(std::vector<Job> jobs) {
    std::vector<Status> results(jobs.size());
    if (jobs.empty()) return results;
    std::unique_lock lock(impl_->mutex);
    impl_->jobs = &jobs;
    impl_->results = &results;
    impl_->next = 0;
    if (jobs.size() > 1) impl_->work.notify_all();
    impl_->drain(lock);
    impl_->idle.wait(lock, [this] { return impl_->running == 0; });
    impl_->jobs = nullptr;
    impl_->results = nullptr;
    return results;
}

}  // namespace tern::sys
