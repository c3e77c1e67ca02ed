// The message being delivered, read from the queue's body fd.
//
// read_queued() reads it once per request with pread() from offset 0 (the fd
// is shared, so its file offset means nothing): all of it when it fits in
// one 64 KiB read -- most mail, which is then written from memory with no
// further read -- else its first bytes, up to the end of the header section
// (at most 1 MiB); the rest streams from the fd in 64 KiB pieces.
// copy_message() writes, after the headers local delivery prepends,
//
//   Return-Path: <sender>          RFC 5321 4.4: added at final delivery
//   Delivered-To: user@domain      what Postfix's local adds, for loop detection
//
// has_delivered_to() looks in the header section for a Delivered-To: for
// the recipient -- a copy coming back through a forwarding loop.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "lib/core/result.hpp"

namespace tern::local {

using Sink = std::function<Status(std::string_view)>;

struct QueuedMessage {
    int fd = -1;
    std::string head;       // the first bytes: the whole message when complete
    bool complete = false;  // head is all of it
    uint64_t size = 0;      // bytes in the whole message
};

Result<QueuedMessage> read_queued(int body_fd);
QueuedMessage inline_message(std::string text);  // a body that came inline with the request

// Up to len bytes of the message from offset (from head, then the fd);
// 0 at its end.
Result<size_t> read_at(const QueuedMessage& message, uint64_t offset, char* buf, size_t len);

std::string delivery_headers(std::string_view sender, std::string_view recipient, bool return_path = true);

// Writes prefix, then the whole message, to sink (a complete small message
// in one piece).  Sink errors are returned as is.
Status copy_message(const QueuedMessage& message, std::string_view prefix, const Sink& sink);

// True when the header section has "Delivered-To: <recipient>" (case-insensitive).
bool has_delivered_to(const QueuedMessage& message, std::string_view recipient);

}  // namespace tern::local
