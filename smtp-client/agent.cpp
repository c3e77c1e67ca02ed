// The remote delivery agent (see agent.hpp).
#include "smtp-client/agent.hpp"

#include <algorithm>
#include <cstdio>

#include "lib/log/log.hpp"
#include "lib/sys/clock.hpp"

namespace tern::smtpc {

namespace {

double now() { return static_cast<double>(sys::now_us()) / 1e6; }

std::string fmt(double seconds) {
    if (seconds < 0) seconds = 0;
    char buf[32];
    if (seconds < 0.01) return seconds == 0 ? "0" : "0.01";
    std::snprintf(buf, sizeof buf, seconds < 10 ? "%.2g" : "%.0f", seconds);
    return buf;
}

const char* status_word(delivery::Outcome o) {
    switch (o) {
    case delivery::Outcome::Delivered: return "sent";
    case delivery::Outcome::Bounced: return "bounced";
    case delivery::Outcome::Deferred: return "deferred";
    }
    return "deferred";
}

}  // namespace

struct Agent::Job {
    uint64_t id = 0;
    delivery::Request request;
    Done done;
    std::string nexthop;  // where it goes: the domain, or the transport/relayhost next hop
    Plan plan;
    double received = 0, started = 0, setup_done = 0, transfer = 0;
    bool resolved = false, any_connected = false, has_relay = false;
    std::vector<Target> targets;
    size_t next = 0;
    Target relay;
    std::map<uint32_t, delivery::RecipientResult> results;
    std::string last_dsn = "4.4.1", last_text = "no mail server could be reached";
    std::unique_ptr<Session> session;
    std::optional<mtasts::Policy> sts;
    std::string sts_stamp;  // StsCache::stamp() of the policy in sts
    std::string terms;      // what session was opened under (Agent::terms)
    double opened = 0;      // when session was opened

    std::vector<const delivery::RequestRecipient*> open() const {
        std::vector<const delivery::RequestRecipient*> out;
        for (const auto& r : request.recipients)
            if (!results.count(r.index)) out.push_back(&r);
        return out;
    }
    void settle_open(delivery::Outcome o, const std::string& dsn, const std::string& text) {
        for (const auto* r : open()) results[r->index] = {r->index, o, dsn, text};
    }
};

struct Agent::Route {
    struct Idle {
        std::unique_ptr<Session> session;
        double until = 0;
        std::string terms;
        double opened = 0;
    };
    int active = 0;
    SlowStart window;  // how many of the jobs may run at once
    std::deque<uint64_t> waiting;
    std::vector<Idle> idle;
    double dead_until = 0;
    std::string dead_reason;
    bool pumping = false;  // pump() is running (a job it defers completes into it)
};

Agent::Agent(event_base* base, Settings settings, dns::ResolverSettings dns, Policy policy)
    : base_(base), settings_(std::move(settings)), resolver_(base, std::move(dns)), policy_(std::move(policy)),
      sts_(base, settings_, resolver_) {
    reaper_ = event::timer(base_, [this](short) { graveyard_.clear(); });
    idle_timer_ = event::timer(base_, [this](short) { expire_idle(); });
}

Agent::~Agent() = default;

Agent::Route& Agent::route(const std::string& nexthop) {
    auto [it, fresh] = routes_.try_emplace(nexthop);
    if (fresh) it->second.window = SlowStart(settings_.initial_concurrency, settings_.destination_limit);
    return it->second;
}

void Agent::deliver(delivery::Request request, Done done) {
    auto job = std::make_unique<Job>();
    job->id = next_id_++;
    job->plan = policy_.plan(request.nexthop);
    job->nexthop = job->plan.nexthop.empty() ? request.nexthop : job->plan.nexthop;
    job->request = std::move(request);
    job->done = std::move(done);
    job->received = now();
    Job* raw = job.get();
    jobs_.emplace(raw->id, std::move(job));
    Route& r = route(raw->nexthop);
    if (raw->plan.refused) {
        raw->settle_open(raw->plan.outcome, raw->plan.dsn, raw->plan.text);
        raw->started = raw->setup_done = raw->received;
        ++r.active;  // complete() counts it down
        complete(raw);
        return;
    }
    if (suspended(raw, r)) return;
    if (r.active >= r.window.limit()) {
        r.waiting.push_back(raw->id);
        return;
    }
    start(raw);
}

// A destination marked dead: the job is deferred (and completed) at once,
// with no connection, whether it just arrived or waited for a session slot.
bool Agent::suspended(Job* job, Route& r) {
    if (r.dead_until <= now()) return false;
    job->settle_open(delivery::Outcome::Deferred, "4.4.1", "delivery temporarily suspended: " + r.dead_reason);
    job->started = job->setup_done = now();
    ++r.active;  // complete() counts it down
    complete(job);
    return true;
}

std::optional<std::string> Agent::sts_domain(const Job& job) const {
    // MTA-STS (RFC 8461) applies to MX delivery at the default TLS level;
    // a TLS policy entry, DANE or a literal next hop wins.
    Destination dest = parse_destination(job.nexthop);
    if (dest.literal || job.plan.level_from_table || job.plan.level != TlsLevel::May) return std::nullopt;
    return dest.host;
}

std::string Agent::terms(const Job& job, const std::string& sts_stamp) const {
    return std::string(tls_level_name(job.plan.level)) + (job.plan.level_from_table ? "/table|" : "|") +
           (job.plan.auth ? job.plan.auth->user : "") + "|" + sts_stamp;
}

void Agent::start(Job* job) {
    Route& r = route(job->nexthop);
    ++r.active;
    job->started = now();
    // A cached session carries the job only under the terms it was opened
    // under: a TLS policy entry, login or MTA-STS policy that changed (or
    // expired) since means a new session, which looks at them again.
    auto domain = sts_domain(*job);
    std::string want = terms(*job, domain ? sts_.stamp(*domain) : "");
    double reuse_limit = static_cast<double>(settings_.reuse_time.count()) / 1000.0;
    std::unique_ptr<Session> cached;
    while (!r.idle.empty() && !cached) {
        Route::Idle idle = std::move(r.idle.back());
        r.idle.pop_back();
        if (idle.session->broken()) {
            retire(std::move(idle.session));
        } else if (idle.terms != want || idle.opened + reuse_limit <= job->started) {
            log::info("%s: not reusing the session to %s: %s", job->request.queue_id.c_str(),
                      idle.session->target().label().c_str(),
                      idle.terms != want ? "its TLS or MTA-STS policy changed"
                                         : "open longer than smtp_connection_reuse_time_limit");
            close(std::move(idle.session));
        } else {
            cached = std::move(idle.session);
            job->terms = std::move(idle.terms);
            job->opened = idle.opened;
        }
    }
    begin(job, std::move(cached));
}

void Agent::begin(Job* job, std::unique_ptr<Session> cached) {
    if (cached) {
        job->setup_done = now();
        transact(job, std::move(cached));
        return;
    }
    try_next(job);
}

void Agent::try_next(Job* job) {
    if (job->open().empty()) {
        complete(job);
        return;
    }
    uint64_t id = job->id;
    if (!job->resolved) {
        job->resolved = true;
        if (auto domain = sts_domain(*job)) {
            sts_.policy_for(*domain, [this, id, name = *domain](std::optional<mtasts::Policy> policy) {
                auto it = jobs_.find(id);
                if (it == jobs_.end()) return;
                it->second->sts = std::move(policy);
                it->second->sts_stamp = sts_.stamp(name);
                resolve(it->second.get());
            });
            return;
        }
        resolve(job);
        return;
    }
    if (job->next >= job->targets.size()) {
        if (!job->any_connected && !job->targets.empty()) {
            Route& r = route(job->nexthop);
            r.dead_until = now() + static_cast<double>(settings_.dead_time.count());
            r.dead_reason = job->last_text;
        }
        if (job->setup_done == 0) job->setup_done = now();
        job->settle_open(delivery::Outcome::Deferred, job->last_dsn, job->last_text);
        complete(job);
        return;
    }
    Target target = job->targets[job->next++];
    std::optional<std::pair<std::string, std::string>> auth;
    if (job->plan.auth) auth.emplace(job->plan.auth->user, job->plan.auth->password);
    job->session = std::make_unique<Session>(base_, settings_, target, std::move(auth));
    job->session->open([this, id](OpenResult result) {
        auto it = jobs_.find(id);
        if (it == jobs_.end()) return;
        Job* j = it->second.get();
        std::unique_ptr<Session> s = std::move(j->session);
        if (!result.ok) {
            // A server that answered (even to refuse) is not a dead host.
            j->any_connected = j->any_connected || result.reached;
            route(j->nexthop).window.failure();
            j->last_dsn = result.dsn;
            j->last_text = result.text;
            j->relay = s->target();
            j->has_relay = true;
            retire(std::move(s));
            try_next(j);
            return;
        }
        j->any_connected = true;
        j->setup_done = now();
        j->terms = terms(*j, j->sts_stamp);
        j->opened = j->setup_done;
        transact(j, std::move(s));
    });
}

void Agent::resolve(Job* job) {
    uint64_t id = job->id;
    find_next_hop(resolver_, settings_, job->nexthop, job->plan.level, [this, id](NextHop hop) {
        auto it = jobs_.find(id);
        if (it == jobs_.end()) return;
        Job* j = it->second.get();
        if (hop.ok && j->sts && !apply_sts(j, hop)) {
            hop.ok = false;
            hop.outcome = delivery::Outcome::Deferred;
            hop.dsn = "4.7.5";
            hop.text = "MTA-STS policy for " + j->nexthop + " (enforce) matches none of its MX hosts";
        }
        if (!hop.ok) {
            j->setup_done = now();
            j->settle_open(hop.outcome, hop.dsn, hop.text);
            complete(j);
            return;
        }
        j->targets = std::move(hop.targets);
        try_next(j);
    });
}

// enforce: only MX hosts the policy names, over verified TLS (RFC 8461
// 4.2); testing: log what enforce would refuse.  False when nothing is left.
bool Agent::apply_sts(Job* job, NextHop& hop) {
    const mtasts::Policy& p = *job->sts;
    if (p.mode == mtasts::Mode::None) return true;
    std::vector<Target> kept;
    for (auto& t : hop.targets) {
        if (!p.matches(t.host)) {
            log::info("%s: MTA-STS policy for %s (%s) does not list MX host %s", job->request.queue_id.c_str(),
                      job->nexthop.c_str(), std::string(mtasts::mode_name(p.mode)).c_str(), t.host.c_str());
            if (p.mode == mtasts::Mode::Enforce) continue;
        }
        if (p.mode == mtasts::Mode::Enforce) t.level = TlsLevel::Verify;
        kept.push_back(std::move(t));
    }
    hop.targets = std::move(kept);
    return !hop.targets.empty();
}

void Agent::transact(Job* job, std::unique_ptr<Session> session) {
    uint64_t id = job->id;
    job->relay = session->target();
    job->has_relay = true;
    job->any_connected = true;
    job->session = std::move(session);
    job->session->send(job->request, job->open(), [this, id](TransactionResult tr) {
        auto it = jobs_.find(id);
        if (it == jobs_.end()) return;
        Job* j = it->second.get();
        j->transfer += tr.transfer_seconds;
        for (auto& r : tr.results) j->results[r.index] = std::move(r);
        std::unique_ptr<Session> s = std::move(j->session);
        Route& r = route(j->nexthop);
        if (!j->open().empty()) {
            r.window.failure();  // the session broke off
            j->last_dsn = "4.4.2";
            j->last_text = tr.error.empty() ? "lost connection with " + s->target().label() : tr.error;
            retire(std::move(s));
            try_next(j);
            return;
        }
        r.window.success();  // the server answered for every recipient
        release(j, std::move(s));
        complete(j);
    });
}

void Agent::release(Job* job, std::unique_ptr<Session> session) {
    if (session->broken()) {
        retire(std::move(session));
        return;
    }
    Route& r = route(job->nexthop);
    r.idle.push_back({std::move(session), now() + static_cast<double>(settings_.cache_time.count()) / 1000.0,
                      job->terms, job->opened});
    if (!idle_timer_.pending()) idle_timer_.add(settings_.cache_time);
}

void Agent::expire_idle() {
    double t = now();
    bool more = false;
    for (auto& [name, r] : routes_) {
        for (auto it = r.idle.begin(); it != r.idle.end();) {
            if (it->until <= t || it->session->broken()) {
                close(std::move(it->session));
                it = r.idle.erase(it);
            } else {
                more = true;
                ++it;
            }
        }
        if (r.active == 0 && r.waiting.empty() && r.idle.empty()) r.window.reset();  // gone quiet
    }
    if (more) idle_timer_.add(std::chrono::milliseconds(std::max<long long>(100, settings_.cache_time.count() / 4)));
}

// QUIT, then free: an idle session that is no longer wanted.
void Agent::close(std::unique_ptr<Session> session) {
    Session* s = session.get();
    closing_.push_back(std::move(session));
    s->quit([this, s] {
        auto c = std::find_if(closing_.begin(), closing_.end(), [s](const auto& p) { return p.get() == s; });
        if (c != closing_.end()) {
            retire(std::move(*c));
            closing_.erase(c);
        }
    });
}

void Agent::retire(std::unique_ptr<Session> session) {
    if (!session) return;
    graveyard_.push_back(std::move(session));
    reaper_.activate();
}

void Agent::complete(Job* job) {
    double end = now();
    delivery::Response response;
    response.queue_id = job->request.queue_id;
    double arrival = job->request.arrival > 0 ? static_cast<double>(job->request.arrival) : job->received;
    std::string relay = job->has_relay ? job->relay.label() : "none";
    double setup = job->setup_done > job->started ? job->setup_done - job->started : 0;
    for (const auto& rc : job->request.recipients) {
        auto it = job->results.find(rc.index);
        delivery::RecipientResult r = it != job->results.end()
                                          ? it->second
                                          : delivery::RecipientResult{rc.index, delivery::Outcome::Deferred, "4.3.0",
                                                                      "no result for this recipient"};
        log::info("%s: to=<%s>, relay=%s, delay=%s, delays=%s/%s/%s/%s, dsn=%s, status=%s (%s)",
                  job->request.queue_id.c_str(), rc.address.c_str(), relay.c_str(), fmt(end - arrival).c_str(),
                  fmt(job->received - arrival).c_str(), fmt(job->started - job->received).c_str(), fmt(setup).c_str(),
                  fmt(job->transfer).c_str(), r.dsn.c_str(), status_word(r.outcome), r.text.c_str());
        response.results.push_back(std::move(r));
    }
    auto done = std::move(job->done);
    std::string nexthop = job->nexthop;
    if (job->session) retire(std::move(job->session));
    jobs_.erase(job->id);
    if (done) done(std::move(response));
    Route& r = route(nexthop);
    --r.active;
    pump(r);
    if (r.active == 0 && r.waiting.empty() && r.idle.empty()) r.window.reset();  // gone quiet
}

void Agent::pump(Route& r) {
    if (r.pumping) return;  // complete() of a job suspended below
    r.pumping = true;
    while (!r.waiting.empty() && r.active < r.window.limit()) {
        uint64_t id = r.waiting.front();
        r.waiting.pop_front();
        auto it = jobs_.find(id);
        if (it != jobs_.end() && !suspended(it->second.get(), r)) start(it->second.get());
    }
    r.pumping = false;
}

}  // namespace tern::smtpc
