// The pickup FIFO: how an unprivileged sendmail(1) tells a running tern
// that the maildrop has a new file.
//
// qmgr's socket belongs to the queue owner (tern:tern 0660): a user's
// sendmail, which holds only the setgid_group (tern-drop), cannot reach it
// and could ask for more than a pickup there.  Like Postfix's public/pickup,
// an installed spool therefore has
//
//   $queue_directory/public/          tern:tern-drop 0710
//   $queue_directory/public/pickup    FIFO, tern:tern-drop 0620
//
// sendmail writes one byte into the FIFO (non-blocking; no reader means tern
// is stopped and the file waits for the pickup at start).  The pickup
// service (pickup/main.cpp) reads and discards whatever arrives and asks qmgr
// for one maildrop scan.  The bytes carry no meaning: the worst a user can
// do through this channel is make qmgr look at the maildrop again.
#pragma once

#include <string>

#include "lib/config/config.hpp"
#include "lib/core/result.hpp"

namespace tern::maildrop {

std::string pickup_fifo_path(const config::Config& config);

// One wake-up byte into the FIFO; fails when there is no FIFO, no reader
// (tern stopped), or no permission.  A full FIFO counts as delivered: the
// reader has wake-ups pending anyway.
Status write_wake(const std::string& fifo_path);

}  // namespace tern::maildrop
