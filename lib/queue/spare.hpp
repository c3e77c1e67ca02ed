// Spare body files, created ahead of time off the event loop.
//
// Creating a file allocates an inode, and on ext4 that can take a long time:
// without a journal it skips inodes freed in the last seconds by reading
// inode-table blocks (recently_deleted), and a queue frees inodes all the
// time.  smtpd's loop thread must not wait for that, so a helper thread
// keeps a few empty files ready in <queue>/spare/ (named <pid>.<seq>, mode
// 0600), and take() renames one into place: a rename allocates no inode.
//
// Finished bodies come back as spares (recycle(), below), so at full speed
// most messages allocate no inode at all.
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
#include <string_view>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

namespace tern::queue {

class SpareFiles {
public:
    // Starts the helper thread keeping `ready` files in directory (created
    // if missing; spares left by dead processes are removed).
    static Result<std::unique_ptr<SpareFiles>> start(const std::string& directory, size_t ready);
    ~SpareFiles();  // stops the thread, removes the spares not taken

    // Renames a spare to path and returns it open for read and write at
    // offset 0, or an invalid Fd when none is ready or the rename failed
    // (create it yourself).  A recycled spare still holds its old content
    // (its blocks stay allocated): write the body from the start and
    // ftruncate() it to its length when done.
    Fd take(const std::string& path);

    // Recycling: a finished body is renamed into directory as "r.<queue id>"
    // instead of being unlinked (false: not done, unlink it), and the helper
    // thread of any smtpd turns it into a spare: renamed to its own name,
    // checked to be open nowhere else (a write lease, refused while any
    // other process holds the file open: a late reader keeps its content),
    // with one link only; its content is overwritten by the next body.  No
    // inode is freed and none allocated for that message, which spares ext4
    // its recently_deleted scan, and a body no larger than the last frees and
    // allocates no block.  Only bodies up to 256 KiB, at most ~160 of them
    // waiting in directory, or ~1,050 when the others are up to 16 KiB
    // (counted every 32 calls): the disk they hold stays bounded (~46 MiB)
    // when no smtpd takes them.
    static bool recycle(const std::string& directory, const std::string& body_path, std::string_view queue_id);

    struct Impl;

private:
    explicit SpareFiles(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace tern::queue
