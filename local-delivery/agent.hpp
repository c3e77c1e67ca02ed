// The local delivery agent proper: "deliver" requests from qmgr in, one
// status per recipient out (lib/delivery/request.hpp).  The requests that
// arrive together are delivered as one batch (server.hpp, group_commit.hpp).
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
#include <optional>
#include <string>
#include <vector>

#include "lib/delivery/request.hpp"
#include "lib/sys/sync_pool.hpp"
#include "lib/tables/recipient_check.hpp"
#include "local-delivery/group_commit.hpp"
#include "local-delivery/message.hpp"
#include "local-delivery/resolve.hpp"
#include "local-delivery/settings.hpp"
#include "local-delivery/store_cache.hpp"

namespace tern::local {

class Agent {
public:
    Agent(tables::RecipientCheck tables, Settings settings)
        : tables_(std::move(tables)), settings_(std::move(settings)), stores_(kOpenStores), pool_(kSyncThreads) {}

    // Delivers every request of a batch (those that arrived together) and
    // returns their answers in the same order.  Maildir deliveries share one
    // group commit (group_commit.hpp): nothing is answered before all of
    // them are on disk.
    std::vector<delivery::Response> handle(const std::vector<const delivery::Request*>& requests);
    void refresh_tables();

private:
    // Stores kept open between deliveries, and threads for parallel fsyncs.
    static constexpr size_t kOpenStores = 32;
    static constexpr int kSyncThreads = 4;

    // One destination's outcome: known now, or a ticket of the group commit.
    struct Part {
        std::optional<DeliveryResult> result;
        size_t ticket = 0;
        std::string via;
    };
    // One recipient of a request while its batch is being delivered.
    struct RecipientWork {
        const delivery::Request* request = nullptr;
        const delivery::RequestRecipient* rcpt = nullptr;
        std::optional<DeliveryResult> result;  // decided as a whole (a loop, a failed resolution)
        std::vector<Part> parts;               // destinations in order, forwarding last
        double start = 0;
    };

    RecipientWork start_recipient(const delivery::Request& request, const Result<QueuedMessage>& body,
                                  const delivery::RequestRecipient& rcpt, GroupCommit& batch);
    DeliveryResult finish_recipient(const RecipientWork& work, const GroupCommit& batch) const;
    Part deliver_to(const delivery::Request& request, const QueuedMessage& body, const Destination& dest,
                    uint32_t index, const std::string& recipient, const std::string& prefix, GroupCommit& batch);
    DeliveryResult forward(const delivery::Request& request, const QueuedMessage& body,
                           const std::vector<std::string>& addresses, const std::string& recipient);

    tables::RecipientCheck tables_;
    Settings settings_;
    StoreCache stores_;
    sys::SyncPool pool_;
};

}  // namespace tern::local
