// COMPRESS=DEFLATE (RFC 4978) on a session's bufferevent: a libevent filter
// stacked on top of the connection (above TLS when there is TLS, so data is
// compressed before it is encrypted) that inflates what the client sends
// and deflates what imapd writes.
//
// Output is compressed as it is written and flushed (Z_SYNC_FLUSH) once per
// event-loop turn, from a deferred event: everything a command (or an IDLE
// notice) writes leaves together, decodable at once, without a flush after
// every line.  Input is inflated up to kInflatedMax bytes ahead of what the
// session has read, so a small "zip bomb" cannot make the buffer grow.
// Corrupt input calls on_corrupt (from the event loop, never inside the
// filter); the filter discards all further input.
#pragma once

#include <event2/bufferevent.h>

#include <functional>
#include <string>

namespace tern::imapd {

inline constexpr size_t kInflatedMax = 64 * 1024;

// The filter's state; it lives as long as the filter bufferevent.
struct Compression;

// Returns the new top bufferevent, owning `under` (freed with it), or
// nullptr with error set (then `under` is untouched).  `state` is set for
// detach_compression().
bufferevent* start_compression(event_base* base, bufferevent* under, std::function<void(std::string)> on_corrupt,
                               Compression*& state, std::string& error);

// The session is going away: no callback of it runs any more, even if
// libevent frees the filter later.  Call before freeing the bufferevent.
void detach_compression(Compression* state);

}  // namespace tern::imapd
