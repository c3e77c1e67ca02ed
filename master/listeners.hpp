// The listening sockets of services.conf, created by master so that workers
// never need the privilege to bind (port 25) and a restarted worker takes
// over the same socket without refusing a single connection.
//
// inet: one TCP socket per listed address.  unix: one stream socket per path
// (a stale socket file is replaced), mode 0660; when master is root it
// belongs to default_user (tern), the user every internal client (smtpd,
// qmgr) runs as, whatever user the service itself runs as -- so qmgr can
// reach local-delivery, which runs as root.  Postfix's private/ sockets
// follow the same rule.  Every socket of a service is
// named after the service in LISTEN_FDNAMES (as systemd names the sockets
// of one .socket unit); addresses cannot be names, the list is ':'-separated.
#pragma once

#include <map>
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

// Open sockets by socket_key(), handed from old services to new ones on reload.
using SocketPool = std::map<std::string, Fd>;
std::string socket_key(config::ListenType type, const config::ListenAddress& address);

// socket_owner: the user owning unix sockets when running as root.  An
// address found in pool takes that open socket (removed from the pool)
// instead of a new one.
Result<ServiceListeners> open_listeners(const config::ServiceSpec& spec, bool running_as_root,
                                        const std::string& socket_owner, SocketPool* pool = nullptr);

// Removes the socket files of a unix service (stop, removal on reload).
void remove_socket_files(const config::ServiceSpec& spec);

}  // namespace tern::master
