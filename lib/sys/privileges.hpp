// Dropping root: setgroups, setgid, setuid, optional chroot.
//
// Each step is checked, then checked again by trying to regain root: a
// process that cannot prove it dropped refuses to continue (fatal), because a
// worker that silently kept root is worse than one that does not start.
#pragma once

#include <sys/types.h>

#include <string>

#include "lib/core/result.hpp"

namespace tern::sys {

struct UserIds {
    uid_t uid;
    gid_t gid;
    std::string name;
    std::string home;
};

Result<UserIds> lookup_user(const std::string& name);

// When running as root: chroot (if chroot_dir is not empty), then become
// `user`.  When not root: nothing to drop; returns ok (the caller logs the
// one "not running as root" warning).
Status drop_privileges(const std::string& user, const std::string& chroot_dir = "");
Status drop_to(const UserIds& ids, const std::string& chroot_dir = "");

}  // namespace tern::sys
