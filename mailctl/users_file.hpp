// Editing the virtual users file (virtual_mailbox_maps) and the virtual
// domains file for `mailctl user` and `mailctl domain`: whole lines are
// kept as written (comments included), the file is replaced atomically
// with its owner and mode kept (new files: 0640; the password file
// root:tern-auth, so only the auth user and root read hashes), and
// users.lmdb is recompiled at once so
// smtpd and local-delivery see the change.  The auth daemon notices the
// new file by itself (it watches mtime/size/inode).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::mailctl {

struct TextFile {
    std::string path;
    std::vector<std::string> lines;  // without their newline
    bool existed = false;

    static Result<TextFile> read(const std::string& path);
    // Atomic replacement, owner/mode kept (mode for a new file, and, when
    // run as root and the group exists, new_group for a new file).
    Status write(mode_t new_mode, const char* new_group = nullptr) const;
};

// Index of the users-file line for address (case-insensitive), or nullopt.
std::optional<size_t> find_user_line(const TextFile& file, std::string_view address);
// The address of a users-file line, lower-cased ("" for comments and blanks).
std::string user_of_line(std::string_view line);

// A password from --password-stdin (one line, without its newline) or from
// the terminal without echo, typed twice when confirm is set.
Result<std::string> read_new_password(bool from_stdin, bool confirm);

}  // namespace tern::mailctl
