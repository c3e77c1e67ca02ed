// The local delivery agent proper: one "deliver" request from qmgr in, one
// status per recipient out (lib/delivery/request.hpp).
//
// Per recipient: a copy that already carries "Delivered-To: <recipient>"
// is a forwarding loop (5.4.6 bounce); otherwise the recipient is resolved
// (resolve.hpp) and the message written to every destination with
// "Return-Path:" and "Delivered-To:" prepended.  The recipient's status is
// the worst of its destinations: any temporary failure defers the whole
// recipient (a retry may duplicate the copies that did arrive — delivery is
// at-least-once), else any permanent failure bounces it, else delivered.
// Addresses in other domains reached through an alias or .forward are
// forwarded as one new message through the maildrop (qmgr picks it up with
// the original sender).
//
// local-delivery writes the final Postfix-style line for each recipient
// (like Postfix's local(8)):
//   QUEUEID: to=<alice@example.org>, orig_to=<team@example.org>, relay=local,
//   delay=0.12, delays=0.1/0/0/0.02, dsn=2.0.0, status=sent (delivered to maildir)
#pragma once

#include <ctime>
#include <string>

#include "lib/delivery/request.hpp"
#include "lib/tables/recipient_check.hpp"
#include "local-delivery/resolve.hpp"
#include "local-delivery/settings.hpp"

namespace tern::local {

class Agent {
public:
    Agent(tables::RecipientCheck tables, Settings settings)
        : tables_(std::move(tables)), settings_(std::move(settings)) {}

    delivery::Response handle(const delivery::Request& request);
    void refresh_tables();

private:
    DeliveryResult deliver_recipient(const delivery::Request& request, const delivery::RequestRecipient& rcpt);
    DeliveryResult deliver_to(const delivery::Request& request, const Destination& dest, uint32_t index,
                              const std::string& recipient,
                              const std::string& prefix);
    DeliveryResult forward(const delivery::Request& request, const std::vector<std::string>& addresses,
                           const std::string& recipient);

    tables::RecipientCheck tables_;
    Settings settings_;
};

}  // namespace tern::local
