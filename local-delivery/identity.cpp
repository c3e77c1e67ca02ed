// Identity and the scoped effective-uid switch: see identity.hpp.
#include "local-delivery/identity.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "lib/core/errno_text.hpp"
#include "lib/log/log.hpp"
#include "lib/sys/privileges.hpp"

namespace tern::local {

// Read once: the real uid never changes here, and the effective one is
// back to its start value outside an AsUser (which asks before switching).
bool running_as_root() {
    static const bool root = ::getuid() == 0 && ::geteuid() == 0;
    return root;
}

Result<Identity> lookup_identity(const std::string& name) {
    auto ids = sys::lookup_user(name);
    if (!ids) return ids.error();
    return Identity{ids->uid, ids->gid, ids->name, ids->home};
}

Result<Identity> lookup_identity(uid_t uid) {
    struct passwd pw {};
    struct passwd* found = nullptr;
    char buf[16384];
    if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) != 0 || !found)
        return make_error("no passwd entry for uid " + std::to_string(uid));
    return Identity{pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir ? pw.pw_dir : "/"};
}

Identity current_identity() {
    auto me = lookup_identity(::getuid());
    if (me) return *me;
    return Identity{::getuid(), ::getgid(), std::to_string(::getuid()), "/"};
}

namespace {

// A process that cannot get its own ids back would run later deliveries
// as the wrong user: stop it instead (master restarts it).
[[noreturn]] void die_without_root(const char* what) {
    log::fatal("cannot restore root %s after a delivery switch: %s", what, std::strerror(errno));
}

// The kernel's calls, not glibc's: Linux keeps credentials per thread,
// and glibc's seteuid/setegid/setgroups change every thread of the process
// by signalling each one and waiting (POSIX semantics) -- 150 us per
// delivery with the sync pool's threads, against 3 us for these.  Only
// this thread opens and creates files as the recipient; the pool's
// threads run their jobs (fsyncs, index syncs) outside any AsUser scope.
int thread_setgroups(size_t n, const gid_t* groups) { return static_cast<int>(::syscall(SYS_setgroups, n, groups)); }
int thread_setegid(gid_t gid) { return static_cast<int>(::syscall(SYS_setresgid, -1, gid, -1)); }
int thread_seteuid(uid_t uid) { return static_cast<int>(::syscall(SYS_setresuid, -1, uid, -1)); }

void restore_groups_or_die(const std::vector<gid_t>& groups) {
    if (thread_setgroups(groups.size(), groups.data()) != 0) die_without_root("groups");
}

}  // namespace

AsUser::AsUser(const Identity& who) {
    if (!running_as_root() || who.uid == 0) return;
    int n = ::getgroups(0, nullptr);
    if (n > 0) {
        saved_groups_.resize(static_cast<size_t>(n));
        n = ::getgroups(n, saved_groups_.data());
        saved_groups_.resize(n > 0 ? static_cast<size_t>(n) : 0);
    }
    // Groups first, then gid, then uid: after the uid we could no longer change them.
    gid_t gid = who.gid;
    if (thread_setgroups(1, &gid) != 0) { status_ = errno_error("setgroups"); return; }
    if (thread_setegid(who.gid) != 0) {
        status_ = errno_error("setegid " + std::to_string(who.gid));
        restore_groups_or_die(saved_groups_);
        return;
    }
    if (thread_seteuid(who.uid) != 0) {
        status_ = errno_error("seteuid " + std::to_string(who.uid));
        if (thread_setegid(0) != 0) die_without_root("gid");
        restore_groups_or_die(saved_groups_);
        return;
    }
    switched_ = true;
}

AsUser::~AsUser() {
    if (!switched_) return;
    if (thread_seteuid(0) != 0) die_without_root("uid");
    if (thread_setegid(0) != 0) die_without_root("gid");
    restore_groups_or_die(saved_groups_);
}

}  // namespace tern::local
