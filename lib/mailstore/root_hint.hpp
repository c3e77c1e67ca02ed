// Where a folder index's main database root was after its last commit,
// kept as an extended attribute of the folder's directory, so that opening
// the index cold reads LMDB's meta pages and that root side by side: the
// root's page number is in the meta page, and SELECT's header is in the
// root (folder_index.hpp), so without the hint they are two reads one
// after the other.  The directory's inode is read anyway to find the index
// file, and a small attribute lives in the inode: the hint costs no read.
// Only a hint: a stale or missing one (another process committed since,
// a file system without user attributes) costs a useless or no prefetch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace tern::mailstore {

struct RootHint {
    uint32_t page_size = 0;
    uint64_t root = 0;
    bool operator==(const RootHint&) const = default;
};

// The main database's root in the newer of LMDB's two meta pages of the
// open data file fd (its on-disk format, data version 1, checked by a unit
// test); nullopt when they do not read as LMDB's.
std::optional<RootHint> read_main_root(int fd);
// Stores the hint on dir (best effort).
void store_root_hint(const std::string& dir, const RootHint& hint);
std::optional<RootHint> load_root_hint(const std::string& dir);
// Asks the kernel, without waiting, for the pages an open reads first: the
// lock file's first page, LMDB's meta pages and the hinted root.  Returns
// the hint it found.
std::optional<RootHint> prefetch_for_open(const std::string& dir, const std::string& index_path);

}  // namespace tern::mailstore
