// The password databases the auth daemon checks, in order: the virtual
// users (virtual_mailbox_maps, passwd-file format, with the hashes of
// auth_password_file, which only this process and root may read), then, for a login without
// '@', the system's password database (getpwnam_r + getspnam_r: root or
// the shadow group).
//
// Users: an immutable snapshot of the users file, swapped when the file's
// mtime/size/inode change; a check in flight keeps the snapshot it started
// with.  check_login() runs on a pool thread: it only reads its arguments.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/settings.hpp"
#include "lib/auth/client.hpp"
#include "lib/core/result.hpp"
#include "lib/tables/compiled_table.hpp"
#include "lib/tables/users.hpp"

namespace tern::authd {

struct Users {
    std::unordered_map<std::string, tables::VirtualUser> by_address;
};

// The users file (mailbox data) joined with the password file (hashes,
// lib/tables/passwords.hpp).
class PasswordDb {
public:
    PasswordDb(std::string path, std::string passwd_path)
        : path_(std::move(path)), passwd_path_(std::move(passwd_path)) {}
    // Re-reads both files when a stamp (mtime ns, size, inode) changed; a
    // missing password file is empty.  On error the previous snapshot
    // stays and the error is logged once.
    void refresh(bool force = false);
    std::shared_ptr<const Users> snapshot() const { return users_; }
    const std::string& path() const { return path_; }

private:
    std::string path_, passwd_path_;
    std::shared_ptr<const Users> users_ = std::make_shared<Users>();
    tables::SourceStamp stamp_, passwd_stamp_;
    std::string last_error_;
};

// What a check found.  reason is for the log ("unknown user", "password
// mismatch", ...); answer.outcome is ok/fail/tempfail.
struct CheckResult {
    auth::Answer answer;
    bool user_known = false;
};

// The whole check of one login; thread-safe; slow (hashes).
CheckResult check_login(const Users& users, const Settings& settings, std::string_view login,
                        std::string_view password, const std::string& dummy_hash);

// A valid hash of a random password, verified for unknown users so that
// a wrong user name takes as long as a wrong password.
std::string make_dummy_hash();

// Login names are compared lower-cased for virtual users; system logins as given.
std::string canonical_login(std::string_view login);

}  // namespace tern::authd
