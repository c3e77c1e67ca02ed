// Spare body files, created ahead of time off the event loop.
//
// Creating a file allocates an inode, and on ext4 that can take a long time:
// without a journal it skips inodes freed in the last seconds by reading
// inode-table blocks (recently_deleted), and a queue frees inodes all the
// time.  smtpd's loop thread must not wait for that, so a helper thread
// keeps a few empty files ready in <queue>/spare/ (named <pid>.<seq>, mode
// 0600), and take() renames one into place: a rename allocates no inode.
//
// Durability is unchanged: the Committer fdatasyncs the body and fsyncs the
// directory that holds its final name, as for a file created in place.  The
// spare/ entry that the rename removed need not be synced: after a crash it
// may name the same inode again only on a file system that does not order
// metadata (e2fsck repairs it), and leftovers are removed at the next start
// (files of processes that no longer exist) or are empty files of no message.
#pragma once

#include <memory>
#include <string>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

namespace tern::queue {

class SpareFiles {
public:
    // Starts the helper thread keeping `ready` files in directory (created
    // if missing; spares left by dead processes are removed).
    static Result<std::unique_ptr<SpareFiles>> start(const std::string& directory, size_t ready);
    ~SpareFiles();  // stops the thread, removes the spares not taken

    // Renames a spare to path and returns it open for read and write, or an
    // invalid Fd when none is ready or the rename failed (create it yourself).
    Fd take(const std::string& path);

    struct Impl;

private:
    explicit SpareFiles(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace tern::queue
