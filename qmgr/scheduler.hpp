// Scheduler: qmgr's core.  Takes due messages from the Store, routes their
// due recipients to transports, applies the agents' answers, retries with
// backoff, expires, warns, bounces, and removes finished messages.
//
// Nothing survives in memory that the Store does not also hold: the active
// set only remembers which recipients are in flight right now.  At start,
// every message is rebuilt from LMDB; a message that has no pending
// recipient left (a crash between the last status update and its removal)
// is finished then.  Status updates are written after the agent answered:
// a crash in between delivers again (a duplicate), never loses mail.
//
// The writes go through the Bookkeeper (bookkeeper.hpp): batched, one synced
// transaction for all answers of a loop iteration, on a worker thread, so
// dispatching never waits for a sync.  A message stays in the active set
// until its writes are committed (it is never taken again from stale
// records), and a finished message that needs no DSN is removed in a single
// change, without a status update first.  "removed" is logged after the
// commit.
//
// Log lines (Postfix's, for pflogsumm and friends):
//   ID: from=<a@b>, size=N, nrcpt=N (queue active)
//   ID: to=<x@y>, relay=none, delay=5, dsn=4.4.1, status=deferred (text)
//       (only for outcomes qmgr decides: no transport, agent unreachable,
//       lost connection, timeout; an agent logs its own answers)
//   ID: from=<a@b>, status=expired, returned to sender
//   ID: sender non-delivery notification: NEWID
//   ID: removed
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lib/config/config.hpp"
#include "lib/delivery/request.hpp"
#include "lib/event/loop.hpp"
#include "lib/delivery/transport.hpp"
#include "lib/queue/queue.hpp"
#include "qmgr/bookkeeper.hpp"
#include "qmgr/notice.hpp"
#include "qmgr/pickup.hpp"
#include "qmgr/route.hpp"

namespace tern::qmgr {

using delivery::Transport;

struct SchedulerSettings {
    int64_t minimal_backoff = 300;
    int64_t maximal_backoff = 4000;
    int64_t maximal_lifetime = 5 * 86400;
    int64_t bounce_lifetime = 5 * 86400;
    int64_t delay_warning = 0;  // 0 = never
    int64_t scan_interval = 300;
    size_t local_concurrency = 10;
    size_t remote_concurrency = 100;  // requests in flight to smtp-client, all destinations
    int64_t agent_timeout = 1200;
    NoticeSettings notice;
    static SchedulerSettings from(const config::Config& config);
};

class Scheduler {
public:
    Scheduler(event_base* base, SchedulerSettings settings, queue::Store& store, Router router, Pickup& pickup);

    // Orphan cleanup, pickup, finishing leftovers, first run, timers.
    void start();
    void wake();   // new mail may be in the queue or the maildrop (coalesced)
    // These messages were just queued (smtpd's wake): activated without a
    // scan of the due index (coalesced).
    void arrived(std::vector<std::string> ids);
    void flush();  // everything due now (`mailctl queue flush`, `sendmail -q`)
    void stop();   // no new dispatches; in-flight requests finish
    size_t active_count() const { return active_.size(); }
    size_t requests_in_flight() const;
    size_t writes_in_flight() const { return bookkeeper_.in_flight(); }

private:
    struct Active {
        queue::Message message;
        std::set<uint32_t> in_flight;
        size_t unsynced = 0;   // changes submitted to the Bookkeeper, not committed yet
        bool gone = false;     // deleted meanwhile (mailctl queue delete)
        bool ended = false;    // the removal was tried (see unfinished_ on failure)
    };

    void run();
    bool taken(std::string_view id) const;  // active, or skipped until the next scan
    // Activates these ids in order until the active limit (then a scan is wanted).
    void activate_all(const std::vector<std::string>& ids, int64_t now);
    void activate(const std::string& id, int64_t now);
    void on_results(const std::string& id, const std::vector<delivery::RecipientResult>& results,
                    bool agent_answered);
    // Applies results to the message in memory; returns the recipients that
    // changed, for record().  The per-recipient status line is logged here
    // only for outcomes qmgr decided (an agent logs its own, and a line twice
    // would count twice in pflogsumm).
    std::vector<queue::Recipient> apply(Active& active, const std::vector<delivery::RecipientResult>& results,
                                        int64_t now, bool log_each);
    // Hands the changed recipients to the Bookkeeper; when the pass is over
    // and the message is finished without a DSN, as one removal instead.
    void record(Active& active, std::vector<queue::Recipient> changed);
    void on_recorded(const std::string& id, bool removal, const Status& status);
    void pass_done(const std::string& id);
    bool complete(const queue::Message& message, int64_t now);
    void finish_leftovers();
    void remove_orphans(int64_t min_age);
    void arm_due_timer();
    Transport* transport(const std::string& name);
    int64_t lifetime(const queue::Message& message) const;

    event_base* base_;
    SchedulerSettings settings_;
    queue::Store& store_;
    Router router_;
    Pickup& pickup_;
    std::map<std::string, Active, std::less<>> active_;
    std::map<std::string, std::unique_ptr<Transport>> transports_;
    std::set<std::string> unfinished_;  // done messages whose notice or removal failed
    std::set<std::string, std::less<>> skipped_;  // due by the index but nothing due inside: until the next scan
    // The due index is scanned only when it may list a message that is due
    // and not active: new mail of unknown ids, a timer, a pass that left
    // recipients pending, a scan cut short.  Messages named by arrived()
    // are activated directly.
    bool scan_wanted_ = true;
    std::vector<std::string> arrived_;
    int64_t due_timer_at_ = 0;  // when the armed due_timer_ fires (seconds)
    // Idempotent delivery (docs/queue.md): a request is marked
    // maybe_delivered when an earlier attempt's result may have been lost:
    // a recipient tried before, a message queued before this qmgr started
    // (the previous one may have died with results unrecorded), or a
    // message whose results failed to be recorded.
    int64_t started_us_ = 0;
    std::set<std::string> unrecorded_;
    event::Watch run_soon_;
    event::Watch due_timer_;
    event::Watch scan_timer_;
    bool stopping_ = false;
    bool pickup_wanted_ = true;
    Bookkeeper bookkeeper_;  // last: destroyed first, its callbacks still find everything above
};

}  // namespace tern::qmgr
