// The virtual users table: a passwd-like text file, one user per line.
//
//   # address        : password              [: uid : gid : home : extra]
//   alice@example.org:{SHA512-CRYPT}$6$salt$hash:::: quota=50M
//   bob@example.org:{BLF-CRYPT}$2y$05$...
//
// Fields after the password are optional and may be empty; extra is a
// white-space separated list of key=value, of which `quota=BYTES` (a size:
// "1000000", "50M") sets the user's Maildir quota.  Addresses are
// case-insensitive (stored lower-cased).  '#' lines and blank lines are
// ignored.
//
// Only the auth daemon reads passwords: they live in a separate password
// file (lib/tables/passwords.hpp); the users file's password field is empty
// (older files: see there).  Everyone else (smtpd's recipient check,
// local-delivery) reads the compiled users.lmdb, which holds everything but
// the password.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"
#include "lib/tables/compiled_table.hpp"

namespace tern::tables {

struct VirtualUser {
    std::string address;   // lower-cased user@domain
    std::string password;  // "{SCHEME}hash"; empty when read from the compiled table
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    std::string home;
    std::string extra;     // as written
    uint64_t quota = 0;    // bytes; 0 = none given
    int line = 0;
};

struct UsersParse {
    std::vector<VirtualUser> users;
    std::vector<std::string> diagnostics;
};

UsersParse parse_users(std::string_view text, std::string_view filename);

// Compiles the users file at path into path + ".lmdb" without passwords.
Status compile_users(const std::string& path);

class UsersTable {
public:
    static Result<UsersTable> open(const std::string& path);
    // The user (password empty) or nullopt; the address is lower-cased first.
    Result<std::optional<VirtualUser>> lookup(std::string_view address) const;
    Status refresh() { return table_.refresh(); }
    bool changed() const { return table_.changed(); }
    const std::string& path() const { return table_.source_path(); }

private:
    explicit UsersTable(CompiledTable table) : table_(std::move(table)) {}
    CompiledTable table_;
};

}  // namespace tern::tables
