// Committer: group commit of newly received messages, off the event loop.
//
// When a session creates a message's body file (DATA/BDAT start) it calls
// entry_created(), and a sync thread fsyncs the body's directory while the
// body streams in.  Sessions that finished DATA hand their message
// (envelope, recipients, open body fd) to submit(); the pool of sync threads
// makes the bodies durable in parallel (fdatasync),
// a commit thread inserts the records of every durable body in one synced
// LMDB transaction per batch, and then every message's completion runs on
// the event loop thread.  Only then does the session send 250.  While a
// batch is being committed, the next bodies are already being synced.
#pragma once

#include <functional>
#include <memory>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"
#include "lib/queue/queue.hpp"

struct event_base;

namespace tern::queue {

class Committer {
public:
    using Done = std::function<void(const Status&)>;  // runs on the loop thread

    // base: the caller's event loop.  event::enable_threads() (that is,
    // evthread_use_pthreads()) must have been called before the base was
    // created: the worker thread wakes the loop with event_active().
    // store must outlive the Committer.
    Committer(event_base* base, Store& store);
    // Commits everything submitted so far, stops the thread, and runs the
    // remaining Done callbacks right here (call it on the loop thread).
    ~Committer();

    // A message on its way in, from entry_created() to submit().
    struct Pending;
    using Ticket = std::shared_ptr<Pending>;

    // The body file of queue id `id` was just created (Store::create_body):
    // the fsync of its directory entry starts now, while the content
    // streams in, and is off the way to the 250 when DATA ends.  Pass the
    // ticket to submit(); dropping it (the transaction was abandoned) only
    // wastes that fsync.
    Ticket entry_created(const std::string& id);

    // body: the written body file (still open); the Committer closes it.
    // Done gets ok once body, entry and records are durable; on an error
    // (ENOSPC, EIO, duplicate id) the body file has been unlinked.
    // envelope.size 0 is filled in from the body file.  ticket: from
    // entry_created() for message.envelope.id; without one (nullptr) the
    // directory is synced now, beside the body.
    void submit(Ticket ticket, Message message, Fd body, Done done);
    void submit(Message message, Fd body, Done done) { submit(nullptr, std::move(message), std::move(body), std::move(done)); }

    size_t in_flight() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tern::queue
