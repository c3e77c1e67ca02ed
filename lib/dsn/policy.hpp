// Retry and notification policy: when a deferred recipient is tried again,
// when it is given up on, and which delivery status notifications it wants.
//
// Kept apart from qmgr so the rules are unit-tested without a running queue.
//   backoff: minimal_backoff_time doubled per failed attempt, capped at
//            maximal_backoff_time (Postfix's rule, without the jitter).
//   expiry:  maximal_queue_lifetime after arrival (bounce_queue_lifetime for
//            tern's own bounces), after which "5.4.7 delivery time expired".
//   notify:  RFC 3461 4.1 — NOTIFY=NEVER wants nothing; no NOTIFY parameter
//            means FAILURE (and DELAY: RFC 3461 4.1 leaves it to the MTA,
//            Postfix and sendmail send delay warnings by default).
#pragma once

#include <cstdint>

namespace tern::dsn {

// Seconds to wait after the `attempts`-th failed attempt (attempts >= 1).
int64_t backoff_seconds(uint32_t attempts, int64_t minimal, int64_t maximal);

// True when a message that arrived at arrival_s (unix seconds) is past its
// lifetime at now_s.  A lifetime of 0 means "try once" (Postfix semantics).
bool lifetime_expired(int64_t arrival_s, int64_t now_s, int64_t lifetime_s);

enum class NoticeKind { Failure, Delay, Success };

// notify: queue::Notify bits (kNotifyNone when the client gave no NOTIFY).
bool wants_notice(uint8_t notify, NoticeKind kind);

}  // namespace tern::dsn
