// Dropping root to a service user, with proof (see privileges.hpp).
//
// Order matters: supplementary groups and the gid can only be changed
// while still root, and chroot needs root too, so the uid goes last.
// Afterwards we try to get root back; success means the drop failed.
#include "lib/sys/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "lib/core/errno_text.hpp"

namespace tern::sys {

Result<UserIds> lookup_user(const std::string& name) {
    if (name.empty()) return make_error("empty user name");
    long size_hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buf(size_hint > 0 ? static_cast<size_t>(size_hint) : 16384);
    passwd pw{};
    passwd* found = nullptr;
    for (;;) {
        int r = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
        if (r == ERANGE && buf.size() < (1u << 20)) {
            buf.resize(buf.size() * 2);
            continue;
        }
        if (r != 0) return errno_error("getpwnam " + name, r);
        break;
    }
    if (found == nullptr) return make_error("unknown user \"" + name + "\"");
    return UserIds{pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir ? pw.pw_dir : "/"};
}

Status drop_to(const UserIds& ids, const std::string& chroot_dir) {
    if (geteuid() != 0) return {};  // nothing to drop; the caller warns once
    if (initgroups(ids.name.c_str(), ids.gid) != 0) {
        // A uid without a passwd entry (or a broken group db): no extra groups.
        gid_t only = ids.gid;
        if (setgroups(1, &only) != 0) return errno_error("setgroups for " + ids.name);
    }
    if (!chroot_dir.empty()) {
        if (chroot(chroot_dir.c_str()) != 0) return errno_error("chroot " + chroot_dir);
        if (chdir("/") != 0) return errno_error("chdir / in " + chroot_dir);
    }
    if (setgid(ids.gid) != 0) return errno_error("setgid " + std::to_string(ids.gid));
    if (setuid(ids.uid) != 0) return errno_error("setuid " + std::to_string(ids.uid));

    // Proof: every id is the target one, and root cannot be regained.
    if (getuid() != ids.uid || geteuid() != ids.uid)
        return make_error("uid is still " + std::to_string(geteuid()) + " after setuid");
    if (getgid() != ids.gid || getegid() != ids.gid)
        return make_error("gid is still " + std::to_string(getegid()) + " after setgid");
    if (ids.uid != 0) {
        if (setuid(0) == 0 || seteuid(0) == 0) return make_error("root privileges could be regained");
    }
    return {};
}

Status drop_privileges(const std::string& user, const std::string& chroot_dir) {
    if (geteuid() != 0) return {};
    auto ids = lookup_user(user);
    if (!ids) return ids.error();
    return drop_to(*ids, chroot_dir);
}

}  // namespace tern::sys
