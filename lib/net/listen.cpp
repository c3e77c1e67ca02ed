// listen_tcp / listen_unix; see listen.hpp.
#include "lib/net/listen.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "lib/core/errno_text.hpp"
#include "lib/net/address.hpp"

namespace tern::net {

Result<Fd> listen_tcp(const std::string& host, int port, int backlog) {
    if (port < 0 || port > 65535) return make_error("listen: bad port " + std::to_string(port));
    std::string name = (host.empty() || host == "*") ? "0.0.0.0" : host;
    if (name.size() >= 2 && name.front() == '[' && name.back() == ']') name = name.substr(1, name.size() - 2);
    std::string where = format_host_port(name, port);

    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string service = std::to_string(port);
    int rc = getaddrinfo(name.c_str(), service.c_str(), &hints, &res);
    if (rc != 0) return make_error("listen " + where + ": " + gai_strerror(rc));
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, freeaddrinfo);

    Fd sock(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!sock) return errno_error("socket for " + where);
    int one = 1;
    if (::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        return errno_error("SO_REUSEADDR on " + where);
    if (res->ai_family == AF_INET6 &&
        ::setsockopt(sock.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
        return errno_error("IPV6_V6ONLY on " + where);
    // Every protocol served is request and reply: no Nagle delay.  Linux
    // gives accepted sockets the listener's TCP_NODELAY, which saves the
    // servers a setsockopt() per connection.
    if (::setsockopt(sock.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        return errno_error("TCP_NODELAY on " + where);
    if (::bind(sock.get(), res->ai_addr, res->ai_addrlen) != 0) return errno_error("bind " + where);
    if (::listen(sock.get(), backlog) != 0) return errno_error("listen " + where);
    return sock;
}

Result<Fd> listen_unix(const std::string& path, mode_t mode, int backlog) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) return make_error("listen " + path + ": path too long");
    std::memcpy(addr.sun_path, path.data(), path.size());

    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return make_error("listen " + path + ": exists and is not a socket");
        // A live server answers; a stale socket from a crash refuses.
        // Non-blocking probe: a live server with a full backlog says EAGAIN.
        Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!probe) return errno_error("socket for " + path);
        if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 || errno == EAGAIN)
            return make_error("listen " + path + ": socket in use by another process");
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_error("unlink stale socket " + path);
    }
    Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!sock) return errno_error("socket for " + path);
    if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return errno_error("bind " + path);
    if (::chmod(path.c_str(), mode) != 0) {
        int err = errno;
        ::unlink(path.c_str());
        return errno_error("chmod " + path, err);
    }
    if (::listen(sock.get(), backlog) != 0) {
        int err = errno;
        ::unlink(path.c_str());
        return errno_error("listen " + path, err);
    }
    return sock;
}

int bound_port(int sock) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(sock, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
    return port_of(reinterpret_cast<sockaddr*>(&ss));
}

}  // namespace tern::net
