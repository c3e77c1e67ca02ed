// sendmsg/recvmsg with SCM_RIGHTS; see socket_io.hpp.
#include "lib/ipc/socket_io.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "lib/ipc/message.hpp"

namespace tern::ipc::detail {

namespace {
// Room for the most fds one frame may carry.
constexpr size_t kControlSpace = CMSG_SPACE(sizeof(int) * kMaxFds);
}  // namespace

ssize_t send_with_fds(int sock, const char* data, size_t len, const int* fds, size_t nfds) {
    iovec iov{const_cast<char*>(data), len};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[kControlSpace];
    if (nfds > kMaxFds) {
        errno = EINVAL;
        return -1;
    }
    if (nfds > 0) {
        std::memset(control, 0, sizeof control);
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        std::memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
    }
    ssize_t n;
    do {
        n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
}

ssize_t recv_with_fds(int sock, char* buf, size_t len, std::vector<Fd>& fds, bool* truncated, int flags) {
    iovec iov{buf, len};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[kControlSpace];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
    } while (n < 0 && errno == EINTR);
    if (truncated) *truncated = false;
    if (n < 0) return n;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char* p = CMSG_DATA(c);
        for (size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, p + i * sizeof(int), sizeof(int));
            fds.emplace_back(fd);
        }
    }
    if ((msg.msg_flags & MSG_CTRUNC) && truncated) *truncated = true;
    return n;
}

}  // namespace tern::ipc::detail
