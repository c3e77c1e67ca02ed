// The listening sockets of services.conf, created by master so that workers
// never need the privilege to bind (port 25) and a restarted worker takes
// over the same socket without refusing a single connection.
//
// inet: one TCP socket per listed address.  unix: one stream socket per path
// (a stale socket file is replaced); when master is root the socket belongs
// to the service's user with mode 0660, so only that user (and root) can
// connect, otherwise to the invoking user.  Every socket of a service is
// named after the service in LISTEN_FDNAMES (as systemd names the sockets
// of one .socket unit); addresses cannot be names, the list is ':'-separated.
#pragma once

#include <string>
#include <vector>

#include "lib/config/services.hpp"
#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

namespace tern::master {

struct ServiceListeners {
    std::vector<Fd> fds;
    std::vector<std::string> names;
};

// The LISTEN_FDNAMES entries of a service with n sockets.
std::vector<std::string> listener_names(const config::ServiceSpec& spec, size_t n);

Result<ServiceListeners> open_listeners(const config::ServiceSpec& spec, bool running_as_root);

// Removes the socket files of a unix service (stop, removal on reload).
void remove_socket_files(const config::ServiceSpec& spec);

// Same type and the same addresses: the open sockets can be kept on reload.
bool same_listen(const config::ServiceSpec& a, const config::ServiceSpec& b);

}  // namespace tern::master
