// Low-level send/recv of bytes plus SCM_RIGHTS file descriptors on UNIX
// stream sockets, shared by the blocking helpers (message.cpp) and the
// event-driven Channel (channel.cpp).
//
// Received fds always carry close-on-exec (MSG_CMSG_CLOEXEC) so a worker
// never leaks a peer's descriptor into a program it execs.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <vector>

#include "lib/core/fd.hpp"

namespace tern::ipc::detail {

// sendmsg() of len bytes with nfds fds attached (nfds may be 0).  Returns
// bytes sent or -1 with errno set (EAGAIN on a full non-blocking socket).
// Never raises SIGPIPE.
ssize_t send_with_fds(int sock, const char* data, size_t len, const int* fds, size_t nfds);

// recvmsg() into buf; received fds are appended to fds.  Returns bytes
// read, 0 on EOF, -1 with errno set.  flags are added to recvmsg's
// (MSG_DONTWAIT).  *truncated is set when the kernel dropped fds because
// more than kMaxFds arrived (MSG_CTRUNC): a protocol error for the caller.
ssize_t recv_with_fds(int sock, char* buf, size_t len, std::vector<Fd>& fds, bool* truncated, int flags = 0);

}  // namespace tern::ipc::detail
