// Committer: group commit of newly received messages, off the event loop.
//
// Sessions that finished DATA hand their message (envelope, recipients,
// open body fd) to submit(); the pool of sync threads makes the bodies
// durable in parallel (fdatasync), a commit thread fsyncs the directories
// of a batch's bodies (one fsync per directory, not per body) and writes
// the records of every durable body as one synced record of this process's
// commit log (commit_log.hpp), and then every message's completion runs on
// the event loop thread.  Only then does the session send 250.  A store
// thread then inserts the logged batches into LMDB, and on_stored runs.
// While a batch is being committed, the next bodies are already being
// synced.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

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
    // store must outlive the Committer.  Makes the commit log (fatal when
    // it cannot: smtpd cannot accept mail without it).
    Committer(event_base* base, Store& store);
    // Commits everything submitted so far, stops the threads, and runs the
    // remaining Done callbacks right here (call it on the loop thread); the
    // log is deleted once all of it is in LMDB.
    ~Committer();

    // body: the written body file (still open; made by Store::create_body
    // for message.envelope.id); the Committer closes it.  Or no file and the
    // whole body in message.small_body (at most kSmallBodyMax bytes): it is
    // stored with the records and never touches a file.  Done gets ok once
    // body, entry and records are durable; on an error (ENOSPC, EIO,
    // duplicate id) the body file has been unlinked.  envelope.size 0 is
    // filled in from the body.
    void submit(Message message, Fd body, Done done);

    size_t in_flight() const;

    // Runs on the loop thread after logged messages reached LMDB (where
    // qmgr reads them), with their queue ids; several stores may make one
    // call.
    void on_stored(std::function<void(std::vector<std::string> ids)> callback);

private:
    struct Pending;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tern::queue
