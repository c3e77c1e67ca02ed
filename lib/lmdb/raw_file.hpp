// Reading an LMDB file's last commit straight from the file, without
// opening the environment: for a process that needs a few values of the
// main database once, before it opens the environment (SELECT's answer
// from a cold folder index, mailstore/folder_index.hpp).  Opening costs a
// lock file, three maps, a reader slot and their page faults; this costs a
// file descriptor and three reads.
//
// LMDB's on-disk format (0.9, data version 1, 64-bit), checked by unit
// tests against files LMDB wrote.  A file of another format, a main
// database that is not a single leaf page, a value on overflow pages, or a
// commit during the reads gives nullopt: the caller opens the environment.
// Consistency without a reader slot: a page of the last commit is only
// rewritten by a later one, so the values read count only when the newest
// meta page is unchanged after them (read_main_leaf() checks that).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::lmdb::raw {

// The newer of the file's two meta pages.
struct Meta {
    uint32_t page_size = 0;
    uint64_t txnid = 0;
    uint64_t main_root = 0;    // ~0: the main database is empty
    uint16_t main_depth = 0;   // 1: its root is a leaf
    bool operator==(const Meta&) const = default;
};

// A record of the main database: a plain key's value, or a named
// database's record (named_db; entries is its count of records).
struct MainRecord {
    std::string key;
    std::string value;        // plain records only
    bool named_db = false;
    uint64_t entries = 0;     // named databases only
};

// page_size_hint: the page size if known (one read of both meta pages
// instead of two); 0 reads the first page to learn it.
std::optional<Meta> read_meta(int fd, uint32_t page_size_hint = 0);

// The main database's records as of the file's last commit, and that
// commit's meta page.
struct MainLeaf {
    Meta meta;
    std::vector<MainRecord> records;
    const MainRecord* find(std::string_view key) const;
};
std::optional<MainLeaf> read_main_leaf(int fd, uint32_t page_size_hint = 0);

}  // namespace tern::lmdb::raw
