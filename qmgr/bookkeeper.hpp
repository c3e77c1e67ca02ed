// Bookkeeper: qmgr's batched, off-loop writes of delivery status.
//
// Agents' answers become Store changes (recipient updates, removals of
// finished messages).  Changes queued while the loop runs are handed to one
// worker thread, which commits everything it finds waiting in ONE synced
// LMDB transaction (Store::apply) and then unlinks the removed bodies; the
// callbacks run back on the loop thread.  While the worker syncs, new
// changes pile up and form the next batch (group commit), and the loop goes
// on dispatching: the ~1-2 ms of sync and unlink per message no longer
// stalls local-delivery.
//
// At-least-once is kept because a recipient's state is only trusted once its
// callback ran: until then the scheduler keeps the message active, so it is
// never dispatched from stale records; a crash before the commit delivers
// again (a duplicate), never loses mail.
//
// The event base must have been created after event::enable_threads().
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "lib/event/loop.hpp"
#include "lib/queue/queue.hpp"

namespace tern::qmgr {

class Bookkeeper {
public:
    using Done = std::function<void(const Status&)>;  // runs on the loop thread

    Bookkeeper(event_base* base, queue::Store& store);
    // Commits what is queued, stops the worker, runs the remaining
    // callbacks here (call it on the loop thread).
    ~Bookkeeper();
    Bookkeeper(const Bookkeeper&) = delete;
    Bookkeeper& operator=(const Bookkeeper&) = delete;

    // Queues a change; it is handed to the worker at the end of this loop
    // iteration together with every other change queued meanwhile.
    void submit(queue::Change change, Done done);
    size_t in_flight() const;  // submitted, callback not run yet

private:
    struct Item {
        queue::Change change;
        Done done;
        Status status;
    };
    void hand_over();   // loop thread: local queue → worker
    void work();        // worker thread
    void finish();      // loop thread: run callbacks of committed items

    queue::Store& store_;
    std::vector<Item> local_;          // loop thread only: queued this iteration
    size_t in_flight_ = 0;             // loop thread only
    mutable std::mutex mutex_;
    std::condition_variable wakeup_;   // worker: todo_ not empty or stopping_
    std::vector<Item> todo_;           // guarded by mutex_
    std::vector<Item> done_;           // guarded by mutex_
    bool stopping_ = false;            // guarded by mutex_
    event::Watch hand_over_ev_;
    event::Watch done_ev_;
    std::thread worker_;
};

}  // namespace tern::qmgr
