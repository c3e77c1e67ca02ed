// LockFile: a pid file held with flock(), so only one instance of a daemon
// (master, qmgr) runs per spool.  The lock dies with the process, so a
// stale file from a crash never blocks a restart.
#pragma once

#include <sys/types.h>

#include <string>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

namespace tern::sys {

class LockFile {
public:
    // Opens/creates path, takes LOCK_EX|LOCK_NB and writes our pid.  Fails
    // with "PATH: already locked by pid N" when another process holds it.
    static Result<LockFile> try_lock(const std::string& path);
    // The pid written in a lock file that is currently held, or 0 when the
    // file is missing or not locked (e.g. for `mailctl status`).
    static pid_t holder(const std::string& path);

    LockFile() = default;
    LockFile(LockFile&&) = default;
    LockFile& operator=(LockFile&&) = default;
    ~LockFile();  // removes the file while still holding the lock

    const std::string& path() const { return path_; }
    bool held() const { return fd_.valid(); }
    // Rewrites the pid (after daemonize() changed it).
    Status update_pid();
    // Releases the lock without removing the file (e.g. in a forked child
    // that must not unlink the parent's lock).
    void forget();

private:
    std::string path_;
    Fd fd_;
};

}  // namespace tern::sys
