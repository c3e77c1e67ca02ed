// sd_notify by hand and unit lookup (see systemd.hpp).
#include "lib/daemon/systemd.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "lib/core/fd.hpp"
#include "lib/sys/files.hpp"

namespace tern::daemon {

SystemdNotifier SystemdNotifier::from_environment() {
    SystemdNotifier n;
    const char* value = std::getenv("NOTIFY_SOCKET");
    // Only absolute paths and abstract names are valid (sd_notify ignores the rest).
    if (value && (value[0] == '/' || value[0] == '@') && std::strlen(value) < sizeof(sockaddr_un::sun_path))
        n.address_ = value;
    ::unsetenv("NOTIFY_SOCKET");
    return n;
}

bool SystemdNotifier::notify(std::string_view state) const {
    if (address_.empty()) return false;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, address_.data(), address_.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
    if (sa.sun_path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return false;
    ssize_t n = ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&sa), len);
    return n == static_cast<ssize_t>(state.size());
}

std::string unit_from_cgroup(std::string_view text) {
    // cgroup v2: "0::/system.slice/tern.service"; v1 has one line per
    // controller, the "name=systemd" one names the unit the same way.
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = text.substr(pos, nl - pos);
        pos = nl + 1;
        bool unified = line.substr(0, 3) == "0::";
        bool named = line.find(":name=systemd:") != std::string_view::npos;
        if (!unified && !named) continue;
        std::string_view path = line.substr(line.rfind(':') + 1);
        // The innermost "*.service" component (units may have sub-cgroups).
        std::string found;
        size_t p = 0;
        while (p < path.size()) {
            size_t slash = path.find('/', p);
            if (slash == std::string_view::npos) slash = path.size();
            std::string_view part = path.substr(p, slash - p);
            if (part.size() > 8 && part.substr(part.size() - 8) == ".service") found = part;
            p = slash + 1;
        }
        if (!found.empty()) return found;
    }
    return "";
}

std::string systemd_unit_of(pid_t pid) {
    auto text = sys::read_file("/proc/" + std::to_string(pid) + "/cgroup");
    if (!text) return "";
    return unit_from_cgroup(*text);
}

bool systemd_booted() {
    struct stat st {};
    return ::lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace tern::daemon
