// aliases(5): the local alias table, its parser and its compiled form.
//
//   # comment
//   postmaster: root
//   team:       alice, bob@example.org,
//               "|/usr/local/bin/ticket --queue support",
//               /var/log/mail-archive, :include:/etc/tern/team.list
//   "odd name": alice
//
// A logical entry is `name: target, target ...`; a line that starts with
// white space continues the previous entry; lines whose first non-blank
// character is '#' and blank lines are ignored.  Names are case-insensitive
// (stored lower-cased) and may be quoted.  Targets are separated by commas
// outside double quotes; each is an address or local user, `\user` (deliver
// to the user's mailbox without further alias/.forward expansion),
// `:include:/path` (more targets read from a file), `|command`, or `/file`.
//
// `compile_aliases(path)` (newaliases, sendmail -bi) writes path + ".lmdb";
// AliasTable reads it and rebuilds or refuses a stale one (compiled_table.hpp).
// .forward and :include: files use the same target syntax
// (parse_target_list), with targets separated by commas or newlines.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"
#include "lib/tables/compiled_table.hpp"

namespace tern::tables {

enum class TargetKind { Address, Include, Command, File };

struct AliasTarget {
    TargetKind kind = TargetKind::Address;
    std::string value;       // address, include path, command line, or file path
    bool no_expand = false;  // "\user": deliver to the mailbox, no further expansion
    bool operator==(const AliasTarget&) const = default;
};

// Classifies one target as written (quotes already removed).
AliasTarget classify_target(std::string_view target);

struct AliasEntry {
    std::string name;                  // lower-cased
    std::vector<std::string> targets;  // unquoted, trimmed, as written otherwise
    int line = 0;
};

struct AliasParse {
    std::vector<AliasEntry> entries;
    std::vector<std::string> diagnostics;  // "aliases:12: missing ':' after name"
};

AliasParse parse_aliases(std::string_view text, std::string_view filename);

// Targets of a .forward or :include: file: separated by commas or newlines,
// '#' comment lines, quotes as in aliases.  Malformed pieces (an unterminated
// quote) are reported in diagnostics and skipped.
std::vector<std::string> parse_target_list(std::string_view text,
                                           std::vector<std::string>* diagnostics = nullptr);

// Compiles the aliases file at path into path + ".lmdb" (newaliases).
// Fails when the file cannot be read; syntax problems are logged as
// warnings (Postfix's postalias behaviour) and the bad entries skipped.
Status compile_aliases(const std::string& path);

class AliasTable {
public:
    // Opens (rebuilding when stale and possible) the compiled table.
    static Result<AliasTable> open(const std::string& path);

    // Targets for a name (looked up lower-cased), nullopt when none.
    Result<std::optional<std::vector<AliasTarget>>> lookup(std::string_view name) const;

    Status refresh() { return table_.refresh(); }
    bool changed() const { return table_.changed(); }
    const std::string& path() const { return table_.source_path(); }
    uid_t owner() const { return table_.source_owner(); }  // who may have written |command and /file

private:
    explicit AliasTable(CompiledTable table) : table_(std::move(table)) {}
    CompiledTable table_;
};

}  // namespace tern::tables
