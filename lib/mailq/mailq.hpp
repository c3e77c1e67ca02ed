// The client side of the queue, shared by `mailctl queue` and sendmail(1)
// (mailq, sendmail -q): the mailq listing and the poke that makes qmgr look.
//
// Listing, in Postfix's mailq shape so scripts that parse it keep working:
//
//   -Queue ID-      --Size-- ----Arrival Time---- -Sender/Recipient-------
//   0123456789ABCD*     1234 Tue Nov 24 02:18:09  alice@example.org
//                                                 (lost connection with local-delivery)
//                                                 bob@example.org
//
//   -- 2 Kbytes in 1 Request.
//
// After the id: '!' held, '*' due now (being delivered or about to be),
// nothing for mail waiting for its next retry.  Only recipients still
// pending are listed, each after its last error in parentheses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/config/config.hpp"
#include "lib/core/result.hpp"
#include "lib/queue/queue.hpp"

namespace tern::mailq {

std::string format_listing(const std::vector<queue::Message>& messages, int64_t now);

// `mailctl queue show`: the envelope, each recipient's state, then the
// message's header section (header_text as read from the body file).
std::string format_details(const queue::Message& message, std::string_view header_text);

// The qmgr socket: the unix listener of the service whose command is qmgr
// in services.conf, else $run_directory/qmgr.sock.
std::string qmgr_socket_path(const config::Config& config);

// Sends `type` ("wake", "flush") to qmgr and waits briefly for its "ok".
// Fails when qmgr is not running; callers treat that as "later".
Status poke_qmgr(const config::Config& config, std::string_view type, int timeout_ms = 2000);

}  // namespace tern::mailq
