// Redeeming a system user's one-time login ticket (auth/login_tickets.hpp)
// with the auth daemon: used only by the root-run user-session service,
// which learns from the daemon itself whom a backend process must become.
//
// Blocking (one short request, no hashing on the daemon's side), bounded
// by timeout_ms.  Fails when the daemon refuses (unknown, expired, used
// ticket, other service or requester, a non-root caller) or is unreachable.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "lib/auth/client.hpp"
#include "lib/core/result.hpp"

namespace tern::auth {

// requester: the uid of the imapd/pop3d process that presented the ticket
// (SO_PEERCRED): it must be the one the ticket was issued to.
Result<Answer> redeem_login_ticket(const std::string& auth_socket, std::string_view ticket, std::string_view service,
                                   uid_t requester, int timeout_ms = 5000);

}  // namespace tern::auth
