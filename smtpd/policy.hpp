// smtpd's recipient policy (RCPT TO): who may send mail where.
//
//   - local domains (mydestination) and virtual domains
//     (virtual_mailbox_domains) accept mail from anyone, for recipients that
//     exist (lib/tables/recipient_check); an unknown one is 550 5.1.1, a
//     table we cannot read is 451 4.3.0 (try again, never a false bounce);
//   - <postmaster> without a domain is always accepted (RFC 5321 4.5.1);
//   - every other domain is relaying, allowed only for clients in
//     mynetworks (and, later, authenticated clients), else 554 5.7.1.
#pragma once

#include <string>

#include "lib/address/address.hpp"

namespace tern::smtpd {

class Server;

struct RecipientVerdict {
    bool accepted = false;
    std::string reply;  // the full reply line (without CRLF) when refused
};

RecipientVerdict check_recipient(Server& server, const address::Path& recipient, bool may_relay);

}  // namespace tern::smtpd
