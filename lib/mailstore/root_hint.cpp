// The main database root hint (see root_hint.hpp).
#include "lib/mailstore/root_hint.hpp"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>

#include "lib/core/fd.hpp"
#include "lib/lmdb/raw_file.hpp"

namespace tern::mailstore {
namespace {

constexpr const char* kAttribute = "user.tern.index-root";

}  // namespace

std::optional<RootHint> read_main_root(int fd) {
    auto meta = lmdb::raw::read_meta(fd);
    // Pages 0 and 1 are the meta pages; all ones: an empty database.
    if (!meta || meta->main_root < 2 || meta->main_root == ~uint64_t{0}) return std::nullopt;
    return RootHint{meta->page_size, meta->main_root};
}

void store_root_hint(const std::string& dir, const RootHint& hint) {
    char value[12];
    std::memcpy(value, &hint.page_size, 4);
    std::memcpy(value + 4, &hint.root, 8);
    (void)::setxattr(dir.c_str(), kAttribute, value, sizeof value, 0);
}

std::optional<RootHint> load_root_hint(const std::string& dir) {
    char value[12];
    if (::getxattr(dir.c_str(), kAttribute, value, sizeof value) != static_cast<ssize_t>(sizeof value))
        return std::nullopt;
    RootHint hint;
    std::memcpy(&hint.page_size, value, 4);
    std::memcpy(&hint.root, value + 4, 8);
    if (hint.page_size < 512 || (hint.page_size & (hint.page_size - 1)) != 0) return std::nullopt;
    return hint;
}

std::optional<RootHint> prefetch_for_open(const std::string& dir, const std::string& index_path) {
    Fd data(::open(index_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!data) return std::nullopt;  // a new index: nothing to read
    auto hint = load_root_hint(dir);
    off_t page = hint ? hint->page_size : 4096;
    (void)::posix_fadvise(data.get(), 0, 2 * page, POSIX_FADV_WILLNEED);
    if (hint) (void)::posix_fadvise(data.get(), static_cast<off_t>(hint->root) * page, page, POSIX_FADV_WILLNEED);
    Fd lock(::open((index_path + "-lock").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (lock) (void)::posix_fadvise(lock.get(), 0, page, POSIX_FADV_WILLNEED);
    return hint;
}

}  // namespace tern::mailstore
