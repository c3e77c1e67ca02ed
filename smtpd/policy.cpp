// Recipient policy (see policy.hpp).  Reply texts follow Postfix so that
// admins' log filters keep working.
#include "smtpd/policy.hpp"

#include "lib/tables/recipient_check.hpp"
#include "smtpd/server.hpp"

namespace tern::smtpd {

RecipientVerdict check_recipient(Server& server, const address::Path& recipient, bool may_relay) {
    RecipientVerdict v;
    if (recipient.domain.empty()) {  // <postmaster>
        v.accepted = true;
        return v;
    }
    auto& tables = server.recipients();
    auto kind = tables.classify_domain(recipient.domain);
    if (kind == tables::RecipientCheck::Domain::Remote) {
        if (may_relay) {
            v.accepted = true;
            return v;
        }
        v.reply = "554 5.7.1 <" + recipient.address + ">: Relay access denied";
        return v;
    }
    switch (tables.check(recipient.address)) {
    case tables::RecipientCheck::Answer::Yes:
        v.accepted = true;
        return v;
    case tables::RecipientCheck::Answer::No:
        v.reply = "550 5.1.1 <" + recipient.address + ">: Recipient address rejected: User unknown in " +
                  (kind == tables::RecipientCheck::Domain::Local ? "local" : "virtual mailbox") +
                  " recipient table";
        return v;
    case tables::RecipientCheck::Answer::Unavailable:
        break;
    }
    v.reply = "451 4.3.0 <" + recipient.address + ">: Temporary lookup failure";
    return v;
}

}  // namespace tern::smtpd
