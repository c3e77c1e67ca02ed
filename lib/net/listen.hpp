// Listening sockets, created by master (or a test) and handed to workers.
// Both are close-on-exec and non-blocking: several worker processes accept
// on one socket, and a worker that loses the race must not block in accept().
#pragma once

#include <sys/types.h>

#include <string>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

namespace tern::net {

// host: numeric IP or name ("" or "*" = all IPv4 addresses, "::" = all
// IPv6).  SO_REUSEADDR; IPv6 sockets are IPV6_V6ONLY so v4 and v6 can be
// listed separately.  port 0 picks a free port (see bound_port()).
Result<Fd> listen_tcp(const std::string& host, int port, int backlog = 128);

// Removes a stale socket file (nothing accepts on it) first; refuses to
// replace a live socket or a file that is not a socket.  mode is applied
// to the socket file (who may connect).
Result<Fd> listen_unix(const std::string& path, mode_t mode = 0666, int backlog = 128);

// The local port of a bound inet socket (0 on error).
int bound_port(int sock);

}  // namespace tern::net
