// SyncPool: runs a list of independent blocking jobs (fsync, fdatasync)
// on a few threads and returns when all of them are done.
//
// Why: this disk (and most) completes many syncs issued at once in about
// the time of one, while the same syncs one after another cost one round
// trip each (docs/performance.md, "Disk primitives").  The caller's thread
// takes jobs too, so a single job runs inline without a thread hand-off.
//
// The threads start with every signal blocked and only ever run the jobs
// they are given.  A job must not depend on the thread's credentials: a
// process that switches its effective ids (local-delivery) does so only
// while run() is not running, and glibc applies such a switch to every
// thread anyway.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::sys {

class SyncPool {
public:
    using Job = std::function<Status()>;

    explicit SyncPool(int threads);
    ~SyncPool();
    SyncPool(const SyncPool&) = delete;
    SyncPool& operator=(const SyncPool&) = delete;

    // Runs every job; result i is job i's status.  Not reentrant: one
    // caller thread at a time.
    std::vector<Status> run(std::vector<Job> jobs);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tern::sys
