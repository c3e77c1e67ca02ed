// Network addresses as tern's config and logs write them: "host:port",
// "[v6]:port", numeric IP strings, and CIDR network lists (mynetworks).
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::net {

struct HostPort {
    std::string host;  // "127.0.0.1", "::1" (no brackets), "mail.example.org", "" = any
    int port = 0;
};

// "127.0.0.1:25", "[::1]:25", "mx.example.org:25", ":25" (any host).
// Ports 1..65535.  A bare IPv6 address without brackets is refused, since
// its last ':' is ambiguous.
Result<HostPort> parse_host_port(std::string_view text);
// "127.0.0.1:25", "[::1]:25"
std::string format_host_port(const std::string& host, int port);

// Numeric IP of a socket address: "127.0.0.1", "::1"; IPv4-mapped IPv6
// addresses print as IPv4 ("::ffff:1.2.3.4" → "1.2.3.4").  "" for other families.
std::string ip_string(const sockaddr* address);
int port_of(const sockaddr* address);  // 0 for non-inet
// "127.0.0.1:25", "[::1]:25", or the path of a UNIX socket.
std::string endpoint_string(const sockaddr* address);

// Parses a numeric IPv4/IPv6 address (brackets allowed) into a sockaddr.
Result<sockaddr_storage> parse_ip(std::string_view ip, int port = 0);

// A list of networks: "127.0.0.0/8", "[::1]/128", "::1/128", "192.0.2.7"
// (a single host).  IPv4 networks also match IPv4-mapped IPv6 clients.
class NetworkList {
public:
    static Result<NetworkList> parse(const std::vector<std::string>& entries);
    // Comma and/or white space separated, as in a tern.conf value.
    static Result<NetworkList> parse(std::string_view list);

    bool contains(const sockaddr* address) const;
    bool contains(std::string_view ip) const;  // false for a malformed ip
    bool empty() const { return networks_.empty(); }
    size_t size() const { return networks_.size(); }

private:
    struct Network {
        int family = 0;              // AF_INET or AF_INET6
        unsigned char bytes[16] = {};  // network address, host bits cleared
        int prefix = 0;
    };
    bool matches(int family, const unsigned char* bytes) const;
    std::vector<Network> networks_;
};

}  // namespace tern::net
