// A tiny authoritative-looking DNS server for unit tests: UDP and TCP on
// 127.0.0.1 (a free port), on the test's own event loop, answering from
// canned records given as zone-file lines ("example.org. 300 IN MX 10
// mx.example.org.").  CNAMEs are followed inside the answer like a
// recursive resolver does.  Per-name behaviours simulate failures:
// servfail, drop (never answer), truncate (UDP answers have TC set and no
// records: the client must ask over TCP), and `authenticated` sets AD.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/event/loop.hpp"

namespace tern::test {

class DnsTestServer {
public:
    explicit DnsTestServer(event_base* base);
    void add(const std::string& zone_line);  // aborts the test on a bad line
    int port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

    std::set<std::string> servfail, drop, truncate, partial_cname;  // lower-case names, no trailing dot
    std::set<std::string> drop_once;  // the first datagram for these is lost, later ones answered
    bool authenticated = false;
    int udp_queries = 0, tcp_queries = 0;

private:
    std::string answer(const std::string& query, bool over_tcp);
    void on_udp();
    void on_accept();

    event_base* base_;
    Fd udp_, tcp_;
    int port_ = 0;
    std::vector<std::string> lines_;
    event::Watch udp_watch_, tcp_watch_;
    std::vector<std::pair<Fd, event::Watch>> clients_;
};

}  // namespace tern::test
