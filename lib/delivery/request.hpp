// The delivery protocol between qmgr and its delivery agents
// (local-delivery, smtp-client), carried as ipc::Messages.
//
// qmgr → agent   "deliver": queue_id, sender, arrival (unix s), size,
//                one "rcpt" per recipient (index, address, orcpt), "nexthop",
//                optional "maybe_delivered" = "1" (an earlier attempt's result
//                may have been lost: look for its mailbox write, docs/queue.md),
//                and the body: the file as an fd (read from offset 0), or, for
//                a small body that the queue holds in its records, the bytes
//                themselves in a "body" attribute and no fd; for remote
//                delivery also the envelope's ESMTP parameters when set:
//                "body_type", "smtputf8", "dsn_ret", "dsn_envid", and one
//                "notify" = "<index> <bits>" per recipient that gave NOTIFY.
// agent → qmgr   "result": queue_id, one "status" per recipient:
//                "<index> <d|s|b> <enhanced code> <text>"
//                d = delivered, s = soft failure (deferred, retry), b = bounced.
//
// An agent answers each request exactly once; a lost connection means every
// recipient of the request is deferred (at-least-once delivery).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"
#include "lib/ipc/message.hpp"

namespace tern::delivery {

struct RequestRecipient {
    uint32_t index = 0;
    std::string address;
    std::string orcpt;
    uint8_t notify = 0;  // queue::Notify bits; 0 = not given
};

struct Request {
    std::string queue_id;
    std::string sender;
    int64_t arrival = 0;
    uint64_t size = 0;
    std::string nexthop;  // "local", a domain, or "[host]:port"
    bool maybe_delivered = false;
    std::vector<RequestRecipient> recipients;
    Fd body;                // the body file, or
    std::string body_text;  // the whole body, when it travels inline (small bodies)
    bool inline_body = false;
    std::string body_type;  // "", "7BIT", "8BITMIME"
    bool smtputf8 = false;
    std::string dsn_ret;    // "", "FULL", "HDRS"
    std::string dsn_envid;
};

enum class Outcome : char { Delivered = 'd', Deferred = 's', Bounced = 'b' };

struct RecipientResult {
    uint32_t index = 0;
    Outcome outcome = Outcome::Deferred;
    std::string dsn;   // "2.0.0", "4.2.2", "5.1.1"
    std::string text;  // "delivered to maildir", "mailbox full", remote reply text
};

struct Response {
    std::string queue_id;
    std::vector<RecipientResult> results;
};

ipc::Message encode_request(const Request& request);  // attaches a dup of the body fd
Result<Request> decode_request(ipc::Message& message);  // takes the fd
ipc::Message encode_response(const Response& response);
Result<Response> decode_response(const ipc::Message& message);

}  // namespace tern::delivery
