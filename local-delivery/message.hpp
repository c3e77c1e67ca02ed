// The message being delivered, read from the queue's body fd.
//
// The body is never held in memory: copy_message() streams it with pread()
// from offset 0 (the fd is shared, so its file offset means nothing) in
// 64 KiB pieces after the headers local delivery prepends:
//
//   Return-Path: <sender>          RFC 5321 4.4: added at final delivery
//   Delivered-To: user@domain      what Postfix's local adds, for loop detection
//
// has_delivered_to() reads only the header section to find a Delivered-To:
// for the recipient — a copy coming back through a forwarding loop.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "lib/core/result.hpp"

namespace tern::local {

using Sink = std::function<Status(std::string_view)>;

std::string delivery_headers(std::string_view sender, std::string_view recipient, bool return_path = true);

// Writes prefix, then the whole body, to sink.  Sink errors are returned as is.
Status copy_message(int body_fd, std::string_view prefix, const Sink& sink);

// True when the header section has "Delivered-To: <recipient>" (case-insensitive).
Result<bool> has_delivered_to(int body_fd, std::string_view recipient);

}  // namespace tern::local
