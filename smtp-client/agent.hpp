// The remote delivery agent: one delivery request from qmgr at a time per
// connection, many at once per process, all on one event loop.
//
// For each request: the policy (policy.hpp) says where it goes (transport
// table, relayhost or the domain's MX), with which TLS level and
// credentials; a destination marked dead defers at once; otherwise an
// idle cached session to the destination is reused (RSET, new MAIL), or
// the next hop is looked up (nexthop.hpp) and each address tried in order
// until one server gives every recipient an answer.  Recipients whose
// server broke the connection go on to the next address; those still open
// after the last one are deferred with the last error.  When no server of
// a destination could even be reached it is marked dead for
// smtp_dead_destination_time, so a flood of its mail is not hammered at it.
//
// At most smtp_destination_concurrency_limit requests per destination run
// at once -- fewer at first: the limit starts at
// smtp_initial_destination_concurrency and grows with deliveries, shrinks
// with failed connections (slow start, slow_start.hpp); more wait, and a finished session is handed straight to the
// next waiting request for its destination (connection reuse).  An idle
// session is closed with QUIT after smtp_connection_cache_time_limit.  A
// session is reused only under the terms it was opened under (TLS level and
// where it came from, login, MTA-STS policy id and expiry) and for at most
// smtp_connection_reuse_time_limit: a policy that changed or expired is
// applied by a new session, never bypassed by an old one.
//
// One Postfix-format line is logged per recipient:
//   QUEUEID: to=<rcpt>, relay=mx.example.org[192.0.2.1]:25, delay=0.4,
//   delays=0.1/0/0.2/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok)
// delays = before the agent / waiting in the agent / DNS and connection
// set-up / transmission.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "lib/delivery/request.hpp"
#include "lib/dns/resolver.hpp"
#include "lib/event/loop.hpp"
#include "smtp-client/mta_sts.hpp"
#include "smtp-client/nexthop.hpp"
#include "smtp-client/policy.hpp"
#include "smtp-client/session.hpp"
#include "smtp-client/settings.hpp"
#include "smtp-client/slow_start.hpp"

namespace tern::smtpc {

class Agent {
public:
    using Done = std::function<void(delivery::Response)>;

    Agent(event_base* base, Settings settings, dns::ResolverSettings dns, Policy policy);
    ~Agent();
    void deliver(delivery::Request request, Done done);
    size_t active() const { return jobs_.size(); }

private:
    struct Job;
    struct Route;

    Route& route(const std::string& nexthop);
    std::optional<std::string> sts_domain(const Job& job) const;  // the domain when MTA-STS applies
    std::string terms(const Job& job, const std::string& sts_stamp) const;
    bool suspended(Job* job, Route& r);
    void start(Job* job);
    void begin(Job* job, std::unique_ptr<Session> cached);
    void try_next(Job* job);
    void resolve(Job* job);
    bool apply_sts(Job* job, NextHop& hop);
    void transact(Job* job, std::unique_ptr<Session> session);
    void release(Job* job, std::unique_ptr<Session> session);
    void complete(Job* job);
    void close(std::unique_ptr<Session> session);
    void retire(std::unique_ptr<Session> session);
    void expire_idle();
    void pump(Route& r);

    event_base* base_;
    Settings settings_;
    dns::Resolver resolver_;
    Policy policy_;
    StsCache sts_;
    std::map<uint64_t, std::unique_ptr<Job>> jobs_;
    std::map<std::string, Route> routes_;
    std::vector<std::unique_ptr<Session>> closing_;
    std::vector<std::unique_ptr<Session>> graveyard_;
    event::Watch reaper_, idle_timer_;
    uint64_t next_id_ = 1;
};

}  // namespace tern::smtpc
