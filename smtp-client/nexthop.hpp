// Next-hop selection for one destination (RFC 5321 5.1): the ordered list
// of mail server addresses to try, from DNS through lib/dns (asynchronous).
//
//   "example.org"        MX records by preference, random order among equal
//                        preferences; no MX → the domain itself (implicit
//                        MX); a null MX (RFC 7505) → bounce 5.1.10 without
//                        any connection; NXDOMAIN → bounce; SERVFAIL or a
//                        timeout → defer, never a bounce.
//   "[host]:port", "[host]"  that host only, no MX lookup (relayhost and
//                        transport-table style).
//
// Each host's A and AAAA records are looked up together; its addresses are
// listed preferred family first (smtp_address_preference), then the other.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "lib/delivery/request.hpp"
#include "lib/dns/resolver.hpp"
#include "smtp-client/session.hpp"
#include "smtp-client/settings.hpp"

namespace tern::smtpc {

struct NextHop {
    bool ok = false;
    std::vector<Target> targets;
    delivery::Outcome outcome = delivery::Outcome::Deferred;  // when !ok
    std::string dsn, text;
};

// Splits "[host]:port" / "[host]" (literal) from a plain domain.
struct Destination {
    std::string host;
    int port = 0;        // 0 = smtp_tcp_port
    bool literal = false;  // no MX lookup
};
Destination parse_destination(std::string_view nexthop);

// level: the destination's TLS level, copied to every target; with Dane,
// each host whose MX and address records were DNSSEC-validated (AD) gets
// its TLSA records (_port._tcp.host) looked up: usable ones → Dane, none
// → may (RFC 7672 2.2), a failed lookup → Dane without records (the
// session then defers).  Hosts from insecure DNS fall back to may.
void find_next_hop(dns::Resolver& resolver, const Settings& settings, const std::string& nexthop, TlsLevel level,
                   std::function<void(NextHop)> done);

}  // namespace tern::smtpc
