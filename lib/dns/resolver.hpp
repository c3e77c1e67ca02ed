// An asynchronous DNS stub resolver on the libevent loop: no call in here
// ever blocks the process (there is no getaddrinfo/res_query anywhere in
// tern's delivery path).
//
// A lookup sends one query over UDP to the first server and waits up to the
// timeout; no answer (or a malformed one) moves on to the next server, round
// robin, for `attempts` rounds.  A reply with TC set is asked again over TCP
// (RFC 7766) on the same server.  A CNAME chain that the reply does not
// finish is followed with new queries (at most 8).  The callback runs
// exactly once, always from the event loop (never inside lookup()), unless
// the Resolver is destroyed first.
//
// Servers come from `dns_resolvers = ip[:port] …` when set, else from the
// nameserver lines of /etc/resolv.conf, else 127.0.0.1 (as the C library
// does).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/config/config.hpp"
#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"
#include "lib/dns/message.hpp"
#include "lib/event/loop.hpp"

namespace tern::dns {

struct Server {
    sockaddr_storage address{};
    socklen_t length = 0;
    std::string text;  // "127.0.0.1:53"
};

struct ResolverSettings {
    std::vector<Server> servers;
    std::chrono::milliseconds timeout{5000};  // per try
    int attempts = 2;                          // rounds over all servers
    // A UDP query unanswered after this is sent again on the same socket
    // (then after twice as long, and so on) within its try: one lost
    // datagram costs this much, not the whole timeout.
    std::chrono::milliseconds retransmit{1000};
};

// "127.0.0.1", "127.0.0.1:5353", "[::1]:53", "::1"
Result<Server> parse_server(std::string_view text);
// The nameserver lines of a resolv.conf text (bad lines are skipped, as the
// C library does).
std::vector<Server> servers_from_resolv_conf(std::string_view text);
// dns_resolvers, else /etc/resolv.conf, else 127.0.0.1; dns_timeout.
Result<ResolverSettings> settings_from(const config::Config& config);

class Resolver {
public:
    using Callback = std::function<void(Answer)>;

    Resolver(event_base* base, ResolverSettings settings);
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    void lookup(std::string name, Type type, Callback callback);
    size_t pending() const { return queries_.size(); }

private:
    struct Query;
    void start(Query& q);
    void retire(Query& q);
    void send_udp(Query& q);
    bool resend_udp(Query& q);
    void send_tcp(Query& q);
    void on_udp(uint64_t id, short what);
    void on_tcp(uint64_t id, short what);
    void next_try(Query& q, const std::string& why);
    void got_answer(Query& q, Answer answer);
    void finish(Query& q, Answer answer);
    Query* find(uint64_t id);

    event_base* base_;
    ResolverSettings settings_;
    std::map<uint64_t, std::unique_ptr<Query>> queries_;
    std::vector<std::unique_ptr<Query>> done_;  // freed outside their own callbacks
    std::vector<event::Watch> retired_;          // likewise
    event::Watch reaper_;
    uint64_t next_id_ = 1;
};

}  // namespace tern::dns
