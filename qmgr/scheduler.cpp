// qmgr's scheduling core (see scheduler.hpp).
#include "qmgr/scheduler.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "lib/dsn/policy.hpp"
#include "lib/log/log.hpp"
#include "lib/sys/clock.hpp"
#include "lib/sys/fault.hpp"

namespace tern::qmgr {

namespace {

constexpr size_t kDueBatch = 1000;      // messages taken per run
constexpr size_t kActiveLimit = 10000;  // messages in memory at once
constexpr size_t kRecipientsPerRequest = 100;
constexpr int64_t kOrphanAge = 3600;    // a body younger than this may still be received

std::string delay_text(int64_t seconds) {
    char buf[64];
    if (seconds < 2 * 3600)
        std::snprintf(buf, sizeof buf, "%lld minutes", static_cast<long long>(seconds / 60));
    else if (seconds < 2 * 86400)
        std::snprintf(buf, sizeof buf, "%lld hours", static_cast<long long>(seconds / 3600));
    else
        std::snprintf(buf, sizeof buf, "%lld days", static_cast<long long>(seconds / 86400));
    return buf;
}

std::string orig_to(const queue::Recipient& r) {
    if (r.orcpt.empty()) return "";
    std::string_view v = r.orcpt;
    size_t semi = v.find(';');
    if (semi != std::string_view::npos) v.remove_prefix(semi + 1);
    if (v == r.address) return "";
    return ", orig_to=<" + std::string(v) + ">";
}

void log_recipient(const queue::Message& m, const queue::Recipient& r, const std::string& relay, int64_t now_us,
                   const char* status) {
    double delay = static_cast<double>(now_us - m.envelope.arrival_us) / 1e6;
    if (delay < 0) delay = 0;
    log::info("%s: to=<%s>%s, relay=%s, delay=%.2f, dsn=%s, status=%s (%s)", m.envelope.id.c_str(),
              r.address.c_str(), orig_to(r).c_str(), relay.c_str(), delay, r.last_status.c_str(), status,
              r.last_error.c_str());
}

bool has_pending(const queue::Message& m) {
    return std::any_of(m.recipients.begin(), m.recipients.end(),
                       [](const queue::Recipient& r) { return r.state == queue::RecipientState::Pending; });
}

dsn::RecipientReport report_for(const queue::Recipient& r, dsn::Action action) {
    dsn::RecipientReport rep;
    rep.address = r.address;
    rep.orcpt = r.orcpt;
    rep.action = action;
    rep.status = r.last_status.empty() ? (action == dsn::Action::Failed ? "5.0.0" : "4.0.0") : r.last_status;
    rep.diagnostic = r.last_error;
    rep.last_attempt = r.last_try;
    return rep;
}

// The DSNs a finished message owes: failures, and successes asked for.
void notice_reports(const queue::Message& m, std::vector<dsn::RecipientReport>& failed,
                    std::vector<dsn::RecipientReport>& succeeded) {
    for (const auto& r : m.recipients) {
        // A failed tern notice is reported whatever its NOTIFY said
        // (to the postmaster, see notice.hpp).
        if (r.state == queue::RecipientState::Bounced &&
            (m.envelope.is_bounce || dsn::wants_notice(r.notify, dsn::NoticeKind::Failure)))
            failed.push_back(report_for(r, dsn::Action::Failed));
        if (r.state == queue::RecipientState::Delivered && dsn::wants_notice(r.notify, dsn::NoticeKind::Success))
            succeeded.push_back(report_for(r, dsn::Action::Delivered));
    }
}

}  // namespace

SchedulerSettings SchedulerSettings::from(const config::Config& c) {
    SchedulerSettings s;
    s.minimal_backoff = c.get_duration("minimal_backoff_time").count();
    s.maximal_backoff = c.get_duration("maximal_backoff_time").count();
    s.maximal_lifetime = c.get_duration("maximal_queue_lifetime").count();
    s.bounce_lifetime = c.get_duration("bounce_queue_lifetime").count();
    s.delay_warning = c.get_duration("delay_warning_time").count();
    s.scan_interval = std::max<int64_t>(1, c.get_duration("queue_run_delay").count());
    s.local_concurrency = static_cast<size_t>(std::max<long long>(1, c.get_int("local_destination_concurrency_limit")));
    s.remote_concurrency = static_cast<size_t>(std::max<long long>(1, c.get_int("smtp_delivery_concurrency_limit")));
    s.agent_timeout = std::max<int64_t>(600, c.get_duration("command_time_limit").count() + 120);
    s.notice.myhostname = c.get("myhostname");
    s.notice.postmaster = "postmaster@" + s.notice.myhostname;
    s.notice.original_size_limit = c.get_size("bounce_size_limit");
    return s;
}

Scheduler::Scheduler(event_base* base, SchedulerSettings settings, queue::Store& store, Router router,
                     Pickup& pickup)
    : base_(base),
      settings_(std::move(settings)),
      store_(store),
      router_(std::move(router)),
      pickup_(pickup),
      bookkeeper_(base, store) {
    run_soon_ = event::timer(base_, [this](short) { run(); });
    due_timer_ = event::timer(base_, [this](short) {
        scan_wanted_ = true;
        run();
    });
    scan_timer_ = event::timer(base_, [this](short) {
        // The safety net: anything a lost wake-up or a failed step left behind.
        pickup_wanted_ = true;
        scan_wanted_ = true;
        skipped_.clear();
        router_.reload_domains();
        // A stopped smtpd's commit log (its restart replays it; this is for
        // one that is not restarted), before orphans: its bodies are not.
        store_.recover_logs();
        remove_orphans(kOrphanAge);
        std::set<std::string> retry;
        retry.swap(unfinished_);
        for (const auto& id : retry)
            if (!active_.count(id))
                if (auto m = store_.load(id)) complete(*m, sys::now_s());
        run();
        scan_timer_.add(std::chrono::seconds(settings_.scan_interval));
    });
}

void Scheduler::start() {
    started_us_ = sys::now_us();
    remove_orphans(kOrphanAge);
    finish_leftovers();
    pickup_wanted_ = true;
    run();
    scan_timer_.add(std::chrono::seconds(settings_.scan_interval));
}

void Scheduler::wake() {
    pickup_wanted_ = true;
    scan_wanted_ = true;
    run_soon_.activate();
}

void Scheduler::arrived(std::vector<std::string> ids) {
    if (arrived_.size() + ids.size() > kDueBatch) {
        arrived_.clear();  // a scan finds them all
        scan_wanted_ = true;
    } else if (!scan_wanted_) {
        arrived_.insert(arrived_.end(), std::make_move_iterator(ids.begin()), std::make_move_iterator(ids.end()));
    }
    run_soon_.activate();
}

void Scheduler::flush() {
    if (auto st = store_.set_all_due(sys::now_s()); !st) log::warning("flush: %s", st.message().c_str());
    wake();
}

void Scheduler::stop() {
    stopping_ = true;
    run_soon_.del();
    due_timer_.del();
    scan_timer_.del();
}

size_t Scheduler::requests_in_flight() const {
    size_t n = 0;
    for (const auto& [name, t] : transports_) n += t->in_flight();
    return n;
}

Transport* Scheduler::transport(const std::string& name) {
    auto it = transports_.find(name);
    if (it != transports_.end()) return it->second.get();
    const auto* spec = router_.local() && router_.local()->name == name ? &*router_.local()
                       : router_.remote() && router_.remote()->name == name ? &*router_.remote()
                                                                           : nullptr;
    if (!spec) return nullptr;
    // smtp-client runs many sessions per process and waits on the network:
    // it gets its own, larger limit (smtp_delivery_concurrency_limit).
    bool local = router_.local() && router_.local()->name == name;
    size_t concurrency = local ? settings_.local_concurrency : settings_.remote_concurrency;
    auto t = std::make_unique<Transport>(
        base_, spec->name, spec->socket_path, concurrency, std::chrono::seconds(settings_.agent_timeout),
        [this](const std::string& id, const std::vector<delivery::RecipientResult>& results, bool agent_answered) {
            on_results(id, results, agent_answered);
        });
    Transport* raw = t.get();
    transports_.emplace(name, std::move(t));
    return raw;
}

int64_t Scheduler::lifetime(const queue::Message& m) const {
    return m.envelope.is_bounce || m.envelope.sender.empty() ? settings_.bounce_lifetime : settings_.maximal_lifetime;
}

void Scheduler::remove_orphans(int64_t min_age) {
    for (const auto& id : store_.orphan_bodies(min_age)) {
        if (active_.count(id)) continue;
        std::string path = store_.body_path(id);
        if (::unlink(path.c_str()) == 0) log::info("%s: removed orphan message file", id.c_str());
    }
}

void Scheduler::finish_leftovers() {
    int64_t now = sys::now_s();
    for (const auto& m : store_.list_all())
        if (!has_pending(m)) complete(m, now);
}

void Scheduler::run() {
    if (stopping_) return;
    if (pickup_wanted_) {
        pickup_wanted_ = false;
        if (pickup_.run() > 0) scan_wanted_ = true;
    }
    int64_t now = sys::now_s();
    std::vector<std::string> arrived;
    arrived.swap(arrived_);
    if (!scan_wanted_) activate_all(arrived, now);
    if (scan_wanted_ && active_.size() < kActiveLimit) {
        scan_wanted_ = false;
        auto due = store_.due(now, kDueBatch, [this](std::string_view id) { return taken(id); });
        // A full batch may have more behind it.
        if (due.size() == kDueBatch) scan_wanted_ = true;
        activate_all(due, now);
    }
    arm_due_timer();
}

bool Scheduler::taken(std::string_view id) const {
    return active_.find(id) != active_.end() || skipped_.find(id) != skipped_.end();
}

void Scheduler::activate_all(const std::vector<std::string>& ids, int64_t now) {
    for (const auto& id : ids) {
        if (active_.size() >= kActiveLimit) {
            scan_wanted_ = true;  // the rest wait in the due index
            return;
        }
        if (!taken(id)) activate(id, now);
    }
}

void Scheduler::arm_due_timer() {
    if (stopping_) return;
    auto next = store_.next_due_time();
    if (!next) {
        due_timer_.del();
        return;
    }
    int64_t now = sys::now_s();
    // Due now, and all of that active (or the scan wanted already): a look
    // once a second, for a message whose time comes while the head of the
    // index is busy.  A timer already due by then is kept, or steady work
    // would push it back for ever.
    int64_t at = *next <= now ? now + 1 : now + std::min<int64_t>(*next - now, settings_.scan_interval);
    if (due_timer_.pending() && due_timer_at_ <= at) return;
    due_timer_.del();
    due_timer_at_ = at;
    due_timer_.add(std::chrono::seconds(at - now));
}

void Scheduler::activate(const std::string& id, int64_t now) {
    auto loaded = store_.load(id);
    if (!loaded || loaded->held) return;
    Active& a = active_[id];
    a.message = std::move(*loaded);
    queue::Message& m = a.message;
    bool first = std::all_of(m.recipients.begin(), m.recipients.end(),
                             [](const queue::Recipient& r) { return r.attempts == 0; });
    if (first)
        log::info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)", id.c_str(), m.envelope.sender.c_str(),
                  static_cast<unsigned long long>(m.envelope.size), m.recipients.size());

    // Group the due recipients by transport and next hop.
    std::vector<delivery::RecipientResult> immediate;  // decided without an agent
    std::map<std::pair<std::string, std::string>, std::vector<const queue::Recipient*>> groups;
    for (const auto& r : m.recipients) {
        if (r.state != queue::RecipientState::Pending || r.next_try > now) continue;
        if (r.attempts > 0 && dsn::lifetime_expired(m.envelope.arrival_us / 1000000, now, lifetime(m))) {
            // Deferred past its lifetime while qmgr was not looking (down, held).
            immediate.push_back({r.index, delivery::Outcome::Deferred, r.last_status, r.last_error});
            continue;
        }
        Route route = router_.route(r.address);
        if (route.transport.empty()) {
            immediate.push_back({r.index, delivery::Outcome::Deferred, "4.4.1", route.unavailable});
            continue;
        }
        groups[{route.transport, route.nexthop}].push_back(&r);
    }

    if (groups.empty() && immediate.empty()) {
        // The due index and the recipients disagree (should not happen):
        // leave the message to the next scan instead of spinning on it.
        log::warning("%s: listed as due but no recipient is due; retrying at the next queue scan", id.c_str());
        skipped_.insert(id);
        active_.erase(id);
        return;
    }
    // A small body goes inline with each request (no file, no fd to pass).
    auto small = store_.small_body(id);
    for (auto& [key, rcpts] : groups) {
        Transport* t = transport(key.first);
        for (size_t start = 0; start < rcpts.size(); start += kRecipientsPerRequest) {
            size_t end = std::min(rcpts.size(), start + kRecipientsPerRequest);
            // The file is opened per request (each takes its fd); a small body needs none.
            Result<Fd> body = Fd();
            if (!small) body = small.error();
            else if (!*small) body = store_.open_body(id);
            if (!t || !body) {
                std::string why = !t ? "no transport " + key.first : "cannot open queue file: " + body.message();
                log::warning("%s: %s", id.c_str(), why.c_str());
                for (size_t i = start; i < end; ++i)
                    immediate.push_back({rcpts[i]->index, delivery::Outcome::Deferred, "4.3.0", why});
                continue;
            }
            delivery::Request req;
            req.queue_id = id;
            req.sender = m.envelope.sender;
            req.arrival = m.envelope.arrival_us / 1000000;
            req.size = m.envelope.size;
            req.nexthop = key.second;
            if (*small) {
                req.inline_body = true;
                req.body_text = **small;
            } else {
                req.body = std::move(*body);
            }
            req.maybe_delivered = m.envelope.arrival_us < started_us_ || unrecorded_.count(id) > 0;
            req.body_type = m.envelope.body_type;
            req.smtputf8 = m.envelope.smtputf8;
            req.dsn_ret = m.envelope.dsn_ret;
            req.dsn_envid = m.envelope.dsn_envid;
            for (size_t i = start; i < end; ++i) {
                req.recipients.push_back({rcpts[i]->index, rcpts[i]->address, rcpts[i]->orcpt, rcpts[i]->notify});
                a.in_flight.insert(rcpts[i]->index);
                if (rcpts[i]->attempts > 0) req.maybe_delivered = true;
            }
            t->submit(std::move(req));
        }
    }
    if (!immediate.empty())
        record(a, apply(a, immediate, now, true));
    else if (a.in_flight.empty())
        pass_done(id);
}

void Scheduler::on_results(const std::string& id, const std::vector<delivery::RecipientResult>& results,
                           bool agent_answered) {
    auto it = active_.find(id);
    if (it == active_.end()) {
        log::warning("%s: result for a message that is not active", id.c_str());
        return;
    }
    sys::fault_point("QMGR_BEFORE_RECORD");
    Active& a = it->second;
    for (const auto& r : results) a.in_flight.erase(r.index);
    record(a, apply(a, results, sys::now_s(), !agent_answered));
}

void Scheduler::record(Active& a, std::vector<queue::Recipient> changed) {
    const std::string id = a.message.envelope.id;
    bool removal = false;
    if (a.in_flight.empty() && !has_pending(a.message)) {
        std::vector<dsn::RecipientReport> failed, succeeded;
        notice_reports(a.message, failed, succeeded);
        // No DSN owed: the records go in one change, no status update first
        // (a crash before the commit delivers again, a duplicate).
        removal = failed.empty() && succeeded.empty();
    }
    if (changed.empty() && !removal) {
        if (a.in_flight.empty() && a.unsynced == 0) pass_done(id);
        return;
    }
    ++a.unsynced;
    bookkeeper_.submit(queue::Change{id, std::move(changed), removal},
                       [this, id, removal](const Status& st) { on_recorded(id, removal, st); });
}

void Scheduler::on_recorded(const std::string& id, bool removal, const Status& st) {
    auto it = active_.find(id);
    if (it == active_.end()) return;  // cannot happen: kept active until now
    Active& a = it->second;
    --a.unsynced;
    if (removal) {
        a.ended = true;
        if (st) {
            log::info("%s: removed", id.c_str());
            unrecorded_.erase(id);
        } else {
            log::warning("%s: cannot remove: %s", id.c_str(), st.message().c_str());
            if (store_.load(id)) unfinished_.insert(id);
        }
    } else if (!st) {
        // Deleted meanwhile (mailctl queue delete) or a storage failure: the
        // Store keeps the old state, so the recipients are tried again later.
        log::warning("%s: cannot record delivery status: %s", id.c_str(), st.message().c_str());
        if (!store_.load(id)) a.gone = true;
        else unrecorded_.insert(id);
    }
    if (!a.in_flight.empty() || a.unsynced > 0) return;
    if (a.gone || a.ended) {
        active_.erase(it);
        run_soon_.activate();
        return;
    }
    pass_done(id);
}

std::vector<queue::Recipient> Scheduler::apply(Active& a, const std::vector<delivery::RecipientResult>& results,
                                               int64_t now, bool log_each) {
    queue::Message& m = a.message;
    const std::string& id = m.envelope.id;
    int64_t now_us = sys::now_us();
    std::vector<queue::Recipient> changed;
    std::vector<size_t> warn;  // positions in m.recipients wanting a delay warning
    bool expired = false;
    for (const auto& res : results) {
        auto rit = std::find_if(m.recipients.begin(), m.recipients.end(),
                                [&](const queue::Recipient& r) { return r.index == res.index; });
        if (rit == m.recipients.end() || rit->state != queue::RecipientState::Pending) continue;
        queue::Recipient& r = *rit;
        Route route = router_.route(r.address);
        std::string relay = route.transport.empty() ? "none" : route.transport;
        r.last_try = now;
        r.last_status = res.dsn;
        r.last_error = res.text;
        switch (res.outcome) {
        case delivery::Outcome::Delivered:
            r.state = queue::RecipientState::Delivered;
            if (log_each) log_recipient(m, r, relay, now_us, "sent");
            break;
        case delivery::Outcome::Bounced:
            r.state = queue::RecipientState::Bounced;
            if (r.last_status.empty() || r.last_status[0] != '5') r.last_status = "5.0.0";
            if (log_each) log_recipient(m, r, relay, now_us, "bounced");
            break;
        case delivery::Outcome::Deferred:
            ++r.attempts;
            if (r.last_status.empty() || r.last_status[0] != '4') r.last_status = "4.0.0";
            if (dsn::lifetime_expired(m.envelope.arrival_us / 1000000, now, lifetime(m))) {
                // RFC 3463 4.4.7: delivery time expired.
                r.state = queue::RecipientState::Bounced;
                r.last_status = "5.4.7";
                r.last_error = "delivery time expired (" + res.text + ")";
                if (log_each) log_recipient(m, r, relay, now_us, "deferred");
                expired = true;
            } else {
                r.next_try = now + dsn::backoff_seconds(r.attempts, settings_.minimal_backoff, settings_.maximal_backoff);
                if (log_each) log_recipient(m, r, relay, now_us, "deferred");
                if (settings_.delay_warning > 0 && !r.delay_warned && !m.envelope.sender.empty() &&
                    !m.envelope.is_bounce && now - m.envelope.arrival_us / 1000000 >= settings_.delay_warning &&
                    dsn::wants_notice(r.notify, dsn::NoticeKind::Delay))
                    warn.push_back(static_cast<size_t>(rit - m.recipients.begin()));
            }
            break;
        }
        changed.push_back(r);
    }
    if (expired)
        log::info("%s: from=<%s>, status=expired, returned to sender", id.c_str(), m.envelope.sender.c_str());
    if (!warn.empty()) {
        std::vector<dsn::RecipientReport> reports;
        for (size_t i : warn) reports.push_back(report_for(m.recipients[i], dsn::Action::Delayed));
        auto notice = enqueue_notice(store_, settings_.notice, m, dsn::NoticeKind::Delay, reports, m.envelope.sender,
                                     now, delay_text(now - m.envelope.arrival_us / 1000000));
        if (notice) {
            log::info("%s: sender delay notification: %s", id.c_str(), notice->c_str());
            for (size_t i : warn) {
                m.recipients[i].delay_warned = true;
                for (auto& c : changed)
                    if (c.index == m.recipients[i].index) c.delay_warned = true;
            }
            wake();
        } else {
            log::warning("%s: cannot queue delay notification: %s", id.c_str(), notice.message().c_str());
        }
    }
    return changed;
}

void Scheduler::pass_done(const std::string& id) {
    auto it = active_.find(id);
    if (it == active_.end()) return;
    queue::Message m = std::move(it->second.message);
    active_.erase(it);
    // Its recipients left pending may be due again (an unrecorded result).
    if (has_pending(m)) scan_wanted_ = true;
    else complete(m, sys::now_s());
    // Capacity freed, and the due index changed: look again.
    run_soon_.activate();
}

bool Scheduler::complete(const queue::Message& m, int64_t now) {
    const std::string& id = m.envelope.id;
    std::vector<dsn::RecipientReport> failed, succeeded;
    notice_reports(m, failed, succeeded);
    for (auto [reports, kind, what] :
         {std::tuple{&failed, dsn::NoticeKind::Failure, "non-delivery"},
          std::tuple{&succeeded, dsn::NoticeKind::Success, "delivery status"}}) {
        if (reports->empty()) continue;
        std::string why;
        auto to = notice_recipient(m, settings_.notice, &why);
        if (!to) {
            log::info("%s: %s", id.c_str(), why.c_str());
            continue;
        }
        if (kind == dsn::NoticeKind::Success && m.envelope.is_bounce) continue;
        auto notice = enqueue_notice(store_, settings_.notice, m, kind, *reports, *to, now);
        if (!notice) {
            // Keep the message: the notice is tried again on the next scan.
            log::error("%s: cannot queue %s notification: %s", id.c_str(), what, notice.message().c_str());
            unfinished_.insert(id);
            return false;
        }
        log::info("%s: %s %s notification: %s", id.c_str(), to == settings_.notice.postmaster && m.envelope.sender.empty()
                                                               ? "postmaster"
                                                               : "sender",
                  what, notice->c_str());
        wake();
    }
    // Batched like the status writes; "removed" is logged after the commit.
    bookkeeper_.submit(queue::Change{id, {}, true}, [this, id](const Status& st) {
        if (st) {
            log::info("%s: removed", id.c_str());
            unrecorded_.erase(id);
            return;
        }
        log::warning("%s: cannot remove: %s", id.c_str(), st.message().c_str());
        if (store_.load(id)) unfinished_.insert(id);
    });
    return true;
}

}  // namespace tern::qmgr
