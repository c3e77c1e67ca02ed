// Who a delivery runs as.  local-delivery starts as root (in production) and
// writes each mailbox with the recipient's uid/gid, so files get the right
// owner and the kernel's permission checks apply to the recipient, not to
// us.  AsUser switches the effective ids of the calling thread for a scope
// and back (identity.cpp: per-thread credentials; the sync pool's threads
// keep root and only sync what is already open); commands get a real,
// irrevocable switch after fork (see command.cpp).  When not running as root (development, tests) every
// delivery is written as the current user and AsUser does nothing.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::local {

struct Identity {
    uid_t uid = 0;
    gid_t gid = 0;
    std::string name;
    std::string home;
};

bool running_as_root();
Identity current_identity();
Result<Identity> lookup_identity(const std::string& name);
Result<Identity> lookup_identity(uid_t uid);

class AsUser {
public:
    // Switches when root and the target is not root; check ok() before use.
    explicit AsUser(const Identity& who);
    ~AsUser();
    AsUser(const AsUser&) = delete;
    AsUser& operator=(const AsUser&) = delete;
    const Status& status() const { return status_; }
    bool ok() const { return status_.ok(); }

private:
    bool switched_ = false;
    std::vector<gid_t> saved_groups_;
    Status status_;
};

}  // namespace tern::local
