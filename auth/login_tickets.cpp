// One-time login tickets: see login_tickets.hpp.
#include "auth/login_tickets.hpp"

#include <sys/random.h>

#include <algorithm>

namespace tern::authd {

std::string LoginTickets::issue(const auth::Answer& answer, std::string_view service, uid_t requester,
                                Clock::time_point now) {
    expire(now);
    unsigned char random[32];
    if (::getrandom(random, sizeof random, 0) != static_cast<ssize_t>(sizeof random)) return "";
    static const char hex[] = "0123456789abcdef";
    std::string ticket;
    for (unsigned char c : random) {
        ticket.push_back(hex[c >> 4]);
        ticket.push_back(hex[c & 15]);
    }
    if (tickets_.size() >= kMaxTickets) {
        auto oldest = std::min_element(tickets_.begin(), tickets_.end(),
                                       [](const auto& a, const auto& b) { return a.second.expires < b.second.expires; });
        tickets_.erase(oldest);
    }
    Entry e{answer, std::string(service), requester, now + kTicketLifetime};
    e.answer.login_ticket.clear();
    tickets_.emplace(ticket, std::move(e));
    return ticket;
}

std::optional<auth::Answer> LoginTickets::redeem(std::string_view ticket, std::string_view service, uid_t requester,
                                                 Clock::time_point now) {
    expire(now);
    auto it = tickets_.find(ticket);
    if (it == tickets_.end()) return std::nullopt;
    Entry e = std::move(it->second);
    tickets_.erase(it);
    if (e.service != service || e.requester != requester) return std::nullopt;
    return e.answer;
}

void LoginTickets::expire(Clock::time_point now) {
    std::erase_if(tickets_, [now](const auto& kv) { return kv.second.expires <= now; });
}

}  // namespace tern::authd
