// An LMDB file's last commit, read from the file (see raw_file.hpp).
#include "lib/lmdb/raw_file.hpp"

#include <unistd.h>

#include <cstring>

namespace tern::lmdb::raw {
namespace {

static_assert(sizeof(size_t) == 8, "LMDB's 64-bit on-disk layout");

// A page starts with its number (u64), a pad (u16), its flags (u16) and,
// on a leaf, the ends of its node pointer array and of its free space
// (u16 each); the pointers (u16 offsets in the page) follow.
constexpr size_t kPageNumberAt = 0, kPageFlagsAt = 10, kLowerAt = 12, kUpperAt = 14, kPageHeader = 16;
constexpr uint16_t kBranch = 0x01, kLeaf = 0x02, kOverflow = 0x04, kMetaPage = 0x08, kLeaf2 = 0x20;
// A meta page: magic (u32), data version (u32), map address, map size, the
// free and main databases' records (48 bytes each), last page, txnid.  A
// database record: pad (u32; the page size in the free database's), flags
// (u16), depth (u16), branch, leaf and overflow page counts, entries, root.
constexpr size_t kMagicAt = 16, kVersionAt = 20, kFreeDbAt = 40, kMainDbAt = 88, kTxnidAt = 144, kMetaBytes = 152;
constexpr size_t kDepthIn = 6, kEntriesIn = 32, kRootIn = 40, kDbRecord = 48;
constexpr uint32_t kMagic = 0xBEEFC0DE, kDataVersion = 1;
// A leaf node: data size (u16 low, u16 high), flags (u16), key size (u16),
// then the key and the data.
constexpr size_t kNodeHeader = 8;
constexpr uint16_t kBigData = 0x01, kSubData = 0x02, kDupData = 0x04;

template <typename T>
T field(const char* p, size_t at) {
    T v;
    std::memcpy(&v, p + at, sizeof v);
    return v;
}

bool valid_page_size(uint32_t n) { return n >= 512 && n <= 65536 && (n & (n - 1)) == 0; }

bool read_exact(int fd, char* buf, size_t n, uint64_t at) {
    return ::pread(fd, buf, n, static_cast<off_t>(at)) == static_cast<ssize_t>(n);
}

bool is_meta(const char* p) {
    return (field<uint16_t>(p, kPageFlagsAt) & kMetaPage) && field<uint32_t>(p, kMagicAt) == kMagic &&
           field<uint32_t>(p, kVersionAt) == kDataVersion;
}

}  // namespace

std::optional<Meta> read_meta(int fd, uint32_t page_size_hint) {
    uint32_t psize = page_size_hint;
    char first[kMetaBytes], second[kMetaBytes];
    if (valid_page_size(psize)) {
        // Both meta pages' heads in one read.
        std::string both(psize + kMetaBytes, '\0');
        if (!read_exact(fd, both.data(), both.size(), 0)) return std::nullopt;
        std::memcpy(first, both.data(), kMetaBytes);
        std::memcpy(second, both.data() + psize, kMetaBytes);
    } else {
        if (!read_exact(fd, first, kMetaBytes, 0) || !is_meta(first)) return std::nullopt;
        psize = field<uint32_t>(first, kFreeDbAt);
        if (!valid_page_size(psize) || !read_exact(fd, second, kMetaBytes, psize)) return std::nullopt;
    }
    if (!is_meta(first) || !is_meta(second) || field<uint32_t>(first, kFreeDbAt) != psize) {
        // A wrong hint: read as without one.
        if (page_size_hint != 0 && is_meta(first)) return read_meta(fd, 0);
        return std::nullopt;
    }
    const char* newer = field<uint64_t>(second, kTxnidAt) > field<uint64_t>(first, kTxnidAt) ? second : first;
    Meta m;
    m.page_size = psize;
    m.txnid = field<uint64_t>(newer, kTxnidAt);
    m.main_root = field<uint64_t>(newer, kMainDbAt + kRootIn);
    m.main_depth = field<uint16_t>(newer, kMainDbAt + kDepthIn);
    return m;
}

const MainRecord* MainLeaf::find(std::string_view key) const {
    for (const auto& r : records)
        if (r.key == key) return &r;
    return nullptr;
}

std::optional<MainLeaf> read_main_leaf(int fd, uint32_t page_size_hint) {
    auto meta = read_meta(fd, page_size_hint);
    // Pages 0 and 1 are the meta pages; all ones: an empty main database.
    if (!meta || meta->main_depth != 1 || meta->main_root < 2 || meta->main_root == ~uint64_t{0}) return std::nullopt;
    const size_t psize = meta->page_size;
    std::string page(psize, '\0');
    if (!read_exact(fd, page.data(), psize, meta->main_root * psize)) return std::nullopt;
    const char* p = page.data();
    uint16_t flags = field<uint16_t>(p, kPageFlagsAt);
    if (field<uint64_t>(p, kPageNumberAt) != meta->main_root || !(flags & kLeaf) ||
        (flags & (kBranch | kOverflow | kMetaPage | kLeaf2)))
        return std::nullopt;
    size_t lower = field<uint16_t>(p, kLowerAt), upper = field<uint16_t>(p, kUpperAt);
    if (lower < kPageHeader || lower > upper || upper > psize) return std::nullopt;
    MainLeaf leaf;
    leaf.meta = *meta;
    for (size_t i = 0; i < (lower - kPageHeader) / 2; ++i) {
        size_t at = field<uint16_t>(p, kPageHeader + 2 * i);
        if (at < upper || at + kNodeHeader > psize) return std::nullopt;
        size_t data_size = field<uint16_t>(p, at) | size_t{field<uint16_t>(p, at + 2)} << 16;
        uint16_t node_flags = field<uint16_t>(p, at + 4);
        size_t key_size = field<uint16_t>(p, at + 6);
        size_t key_at = at + kNodeHeader, data_at = key_at + key_size;
        // A value on overflow pages: only its page number is here.
        size_t here = (node_flags & kBigData) ? sizeof(uint64_t) : data_size;
        if (data_at + here > psize) return std::nullopt;
        if (node_flags & (kBigData | kDupData)) continue;
        MainRecord r;
        r.key.assign(p + key_at, key_size);
        if (node_flags & kSubData) {
            if (data_size != kDbRecord) return std::nullopt;
            r.named_db = true;
            r.entries = field<uint64_t>(p + data_at, kEntriesIn);
        } else {
            r.value.assign(p + data_at, data_size);
        }
        leaf.records.push_back(std::move(r));
    }
    // A later commit may have rewritten the page meanwhile: then the newest
    // meta page is another.
    if (read_meta(fd, static_cast<uint32_t>(psize)) != meta) return std::nullopt;
    return leaf;
}

}  // namespace tern::lmdb::raw
