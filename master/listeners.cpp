// Creating the listening sockets of one service.  See listeners.hpp.
#include "master/listeners.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/errno_text.hpp"
#include "lib/net/listen.hpp"
#include "lib/sys/privileges.hpp"

namespace tern::master {

std::string socket_key(config::ListenType type, const config::ListenAddress& address) {
    return (type == config::ListenType::Inet ? "inet " : "unix ") + address.to_string();
}

Result<ServiceListeners> open_listeners(const config::ServiceSpec& spec, bool running_as_root,
                                        const std::string& socket_owner, SocketPool* pool) {
    ServiceListeners out;
    for (const auto& address : spec.listen) {
        const std::string shown = address.to_string();
        if (spec.type == config::ListenType::None) continue;
        if (pool) {
            auto it = pool->find(socket_key(spec.type, address));
            if (it != pool->end()) {
                out.fds.push_back(std::move(it->second));
                pool->erase(it);
                continue;
            }
        }
        if (spec.type == config::ListenType::Inet) {
            auto fd = net::listen_tcp(address.host, address.port);
            if (!fd) return make_error("service " + spec.name + ": listen " + shown + ": " + fd.message());
            out.fds.push_back(std::move(fd).value());
        } else {
            auto fd = net::listen_unix(address.path, 0660);
            if (!fd) return make_error("service " + spec.name + ": listen " + shown + ": " + fd.message());
            if (running_as_root) {
                auto ids = sys::lookup_user(socket_owner);
                if (!ids) return make_error("service " + spec.name + ": " + ids.message());
                if (chown(address.path.c_str(), ids->uid, ids->gid) != 0)
                    return errno_error("service " + spec.name + ": chown " + address.path);
            }
            out.fds.push_back(std::move(fd).value());
        }
    }
    out.names = listener_names(spec, out.fds.size());
    return out;
}

std::vector<std::string> listener_names(const config::ServiceSpec& spec, size_t n) {
    return std::vector<std::string>(n, spec.name);
}

void remove_socket_files(const config::ServiceSpec& spec) {
    if (spec.type != config::ListenType::Unix) return;
    for (const auto& address : spec.listen) {
        struct stat st;
        if (lstat(address.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(address.path.c_str());
    }
}

}  // namespace tern::master
