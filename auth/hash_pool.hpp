// A small pool of threads for the slow part of a login: the password hash
// (yescrypt takes tens of milliseconds on purpose) and system database
// lookups (NSS may block).  The event loop never waits for them: a job's
// work runs on a pool thread, its completion back on the loop, woken
// through an eventfd.  Jobs must not touch loop state from work().
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/event/loop.hpp"

namespace tern::authd {

class HashPool {
public:
    using Work = std::function<void()>;
    using Done = std::function<void()>;

    HashPool(event_base* base, int threads);
    ~HashPool();  // joins the threads; completions not yet run are dropped
    HashPool(const HashPool&) = delete;
    HashPool& operator=(const HashPool&) = delete;

    void submit(Work work, Done done);
    size_t queued() const;

private:
    struct Job {
        Work work;
        Done done;
    };
    void run_thread();
    void drain_completions();

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Job> todo_;
    std::deque<Done> finished_;
    bool stopping_ = false;
    Fd eventfd_;
    event::Watch watch_;
    std::vector<std::thread> threads_;
};

}  // namespace tern::authd
