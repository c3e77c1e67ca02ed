// Change notices for open mailboxes: one inotify instance per process,
// read by one background thread, fanned out to one eventfd per subscriber.
//
// Why not one inotify instance per Mailbox: the kernel allows 128 instances
// per user by default (fs.inotify.max_user_instances), and one imapd process
// serves many IDLE sessions as the vmail user.  Watches of the same path by
// several subscribers share one inotify watch (counted here).  The thread
// only writes to eventfds; it never touches a Mailbox, so the Mailbox stays
// single-threaded.  After fork() the child starts its own instance on first use.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

namespace tern::mailstore {

class ChangeSubscription {
public:
    ~ChangeSubscription();
    ChangeSubscription(const ChangeSubscription&) = delete;
    ChangeSubscription& operator=(const ChangeSubscription&) = delete;

    int fd() const { return event_.get(); }  // readable after a change of a watched path
    void drain();                           // resets readability

private:
    friend class ChangeWatcher;
    ChangeSubscription() = default;
    Fd event_;
    std::vector<int> watches_;
    unsigned long generation_ = 0;  // the watcher instance (changes after fork)
};

// Watches directories (entries added, removed, renamed) and files (written).
Result<std::unique_ptr<ChangeSubscription>> watch_paths(const std::vector<std::string>& paths);

}  // namespace tern::mailstore
