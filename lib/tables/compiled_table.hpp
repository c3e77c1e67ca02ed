// CompiledTable: a text lookup table compiled into an immutable LMDB file.
//
// Lookup tables (aliases, virtual users) are edited as text and read from a
// compiled form beside the source ("aliases" → "aliases.lmdb").  The compiled
// file records the source's identity (mtime in ns, size, inode); a compiled
// file whose record does not match the source is stale.  A stale or missing
// compiled file is rebuilt when the source is readable and its directory
// writable, and refused (an error) otherwise — never silently used.
//
// The compiled file is written to a temporary name, fsync'd and renamed over
// the old one, so it is never modified in place: readers open it with
// MDB_NOLOCK (no lock file, so read-only users such as smtpd can read it) and
// a reader holding the old file keeps a consistent snapshot.  It gets the
// source's mode bits (and, when written by root, its owner and group), so
// a private source (users, 0640 root:tern) never has a public compiled form.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::tables {

using TableEntries = std::vector<std::pair<std::string, std::string>>;  // key, value
// Parses the source file into entries (keys already normalised), or fails.
using TableBuilder = std::function<Result<TableEntries>(const std::string& source_path)>;

// Identity of a source file as recorded in its compiled form.
struct SourceStamp {
    long long mtime_ns = 0;
    long long size = 0;
    unsigned long long inode = 0;
    std::string to_string() const;
    bool operator==(const SourceStamp&) const = default;
};
Result<SourceStamp> stamp_of(const std::string& path);

std::string compiled_path_for(const std::string& source_path);  // source + ".lmdb"

// Writes entries (duplicates: first wins) into source's compiled file atomically.
Status write_compiled(const std::string& source_path, const TableEntries& entries,
                      const SourceStamp& stamp);
// Parses the source with build and writes the compiled file.
Status compile_table(const std::string& source_path, const TableBuilder& build);

class CompiledTable {
public:
    // Opens the compiled form of source_path, rebuilding it first when it is
    // missing or stale and the directory is writable.
    static Result<CompiledTable> open(const std::string& source_path, TableBuilder build);

    CompiledTable(CompiledTable&&) noexcept;
    CompiledTable& operator=(CompiledTable&&) noexcept;
    ~CompiledTable();

    // The value for key, nullopt when absent; an error when LMDB fails.
    Result<std::optional<std::string>> get(std::string_view key) const;

    // Re-opens (rebuilding when needed) when the source or the compiled file
    // changed since open.  On failure the table stays as it was and the error
    // is returned: callers must treat the table as unusable (stale).
    Status refresh();
    // True when the source no longer matches what was compiled.
    bool changed() const;

    const std::string& source_path() const { return source_; }
    const SourceStamp& source_stamp() const { return stamp_; }
    uid_t source_owner() const { return owner_; }

private:
    struct Env;
    CompiledTable() = default;
    std::string source_;
    TableBuilder build_;
    SourceStamp stamp_;
    unsigned long long compiled_inode_ = 0;
    uid_t owner_ = 0;
    std::unique_ptr<Env> env_;
};

}  // namespace tern::tables
