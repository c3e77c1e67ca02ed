// The password file of the virtual users (auth_password_file, default
// /etc/tern/passwd, root:tern-auth 0640): one "address:{SCHEME}hash" line
// per user, '#' comments, fields after the hash ignored.  It is apart from
// the users file (virtual_mailbox_maps, root:tern 0640) so that the
// processes that need the mailbox list (smtpd, local-delivery, through
// users.lmdb) cannot read hashes: only auth and root do.
//
// Upgrade: users files of older versions hold the hash in their second
// field.  A user with no line in the password file keeps that hash
// (counted in `legacy`, so auth can warn) until `mailctl user convert`
// moves every hash into the password file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lib/tables/users.hpp"

namespace tern::tables {

struct PasswordMerge {
    std::vector<VirtualUser> users;        // from the users file, password from the password file
    std::vector<std::string> diagnostics;  // both files' complaints
    size_t legacy = 0;                     // users whose hash is still in the users file
};

// users_text: the users file; passwd_text: the password file ("" when it
// does not exist).  Lines of the password file without a user are reported.
PasswordMerge merge_passwords(std::string_view users_text, std::string_view users_name,
                              std::string_view passwd_text, std::string_view passwd_name);

}  // namespace tern::tables
