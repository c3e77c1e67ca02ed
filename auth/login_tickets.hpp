// One-time login tickets for system users (docs/imap.md, "System users").
//
// When the auth daemon accepts a system user's password for imap or pop3,
// it issues a random ticket bound to that answer (user, uid, gid, home,
// Maildir), to the service, and to the uid of the process that asked.
// imapd/pop3d (vmail) hand the ticket to the root-run user-session
// service, which redeems it here over its own connection: that is how the
// root part learns whom to become from the auth daemon itself, never from
// a uid that imapd sends.  A ticket is good once, for kTicketLifetime.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "lib/auth/client.hpp"

namespace tern::authd {

class LoginTickets {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::seconds kTicketLifetime{30};
    static constexpr size_t kMaxTickets = 4096;  // unredeemed at once; the oldest goes first

    // A new ticket (64 hex digits from the kernel's random source) for
    // answer; "" when no random bytes could be had.
    std::string issue(const auth::Answer& answer, std::string_view service, uid_t requester, Clock::time_point now);
    // The answer the ticket was issued for, when it exists, has not expired,
    // and service and requester match; the ticket is gone afterwards either way.
    std::optional<auth::Answer> redeem(std::string_view ticket, std::string_view service, uid_t requester,
                                       Clock::time_point now);
    size_t size() const { return tickets_.size(); }

private:
    struct Entry {
        auth::Answer answer;
        std::string service;
        uid_t requester;
        Clock::time_point expires;
    };
    void expire(Clock::time_point now);
    std::map<std::string, Entry, std::less<>> tickets_;
};

}  // namespace tern::authd
