// Thread pool for password hashing: see hash_pool.hpp.
#include "auth/hash_pool.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

#include "lib/log/log.hpp"

namespace tern::authd {

HashPool::HashPool(event_base* base, int threads) {
    eventfd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!eventfd_) log::fatal("eventfd: %m");
    watch_ = event::Watch(base, eventfd_.get(), EV_READ | EV_PERSIST, [this](short) { drain_completions(); });
    watch_.add();
    if (threads < 1) threads = 1;
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run_thread(); });
}

HashPool::~HashPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
}

void HashPool::submit(Work work, Done done) {
    {
        std::lock_guard lock(mutex_);
        todo_.push_back(Job{std::move(work), std::move(done)});
    }
    wake_.notify_one();
}

size_t HashPool::queued() const {
    std::lock_guard lock(mutex_);
    return todo_.size();
}

void HashPool::run_thread() {
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !todo_.empty(); });
            if (stopping_) return;
            job = std::move(todo_.front());
            todo_.pop_front();
        }
        job.work();
        {
            std::lock_guard lock(mutex_);
            finished_.push_back(std::move(job.done));
        }
        uint64_t one = 1;
        (void)!::write(eventfd_.get(), &one, sizeof one);
    }
}

void HashPool::drain_completions() {
    uint64_t n;
    (void)!::read(eventfd_.get(), &n, sizeof n);
    std::deque<Done> ready;
    {
        std::lock_guard lock(mutex_);
        ready.swap(finished_);
    }
    for (auto& done : ready)
        if (done) done();
}

}  // namespace tern::authd
