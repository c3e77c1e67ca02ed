// The main database root hint (see root_hint.hpp).
#include "lib/mailstore/root_hint.hpp"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>

#include "lib/core/fd.hpp"

namespace tern::mailstore {
namespace {

constexpr const char* kAttribute = "user.tern.index-root";
// LMDB's meta page (lmdb 0.9, 64-bit): a 16-byte page header, then
// mm_magic u32, mm_version u32, mm_address, mm_mapsize, mm_dbs[2] (48
// bytes each: md_pad u32 — the page size in the free database's —, md_flags
// u16, md_depth u16, four size_t counts, md_root), mm_last_pg, mm_txnid.
constexpr size_t kMagicAt = 16, kPageSizeAt = 40, kMainRootAt = 128, kTxnidAt = 144, kMetaBytes = 152;
constexpr uint32_t kMagic = 0xBEEFC0DE;

template <typename T>
T field(const char* page, size_t at) {
    T v;
    std::memcpy(&v, page + at, sizeof v);
    return v;
}

}  // namespace

std::optional<RootHint> read_main_root(int fd) {
    static_assert(sizeof(size_t) == 8, "LMDB's 64-bit meta page layout");
    char first[kMetaBytes];
    if (::pread(fd, first, sizeof first, 0) != static_cast<ssize_t>(sizeof first)) return std::nullopt;
    if (field<uint32_t>(first, kMagicAt) != kMagic) return std::nullopt;
    uint32_t page_size = field<uint32_t>(first, kPageSizeAt);
    if (page_size < 512 || (page_size & (page_size - 1)) != 0) return std::nullopt;
    char second[kMetaBytes];
    if (::pread(fd, second, sizeof second, page_size) != static_cast<ssize_t>(sizeof second)) return std::nullopt;
    if (field<uint32_t>(second, kMagicAt) != kMagic) return std::nullopt;
    const char* newer = field<uint64_t>(second, kTxnidAt) > field<uint64_t>(first, kTxnidAt) ? second : first;
    uint64_t root = field<uint64_t>(newer, kMainRootAt);
    if (root < 2 || root == ~uint64_t{0}) return std::nullopt;  // pages 0, 1: meta; all ones: empty
    return RootHint{page_size, root};
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
