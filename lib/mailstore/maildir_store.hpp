// The Maildir++ implementation of the mail store (mailstore.hpp), with a
// per-folder LMDB index.  See docs/mail-store.md for the on-disk layout:
//
//   ROOT/{cur,new,tmp}           INBOX
//   ROOT/.Name.Sub/{cur,new,tmp} folder "Name/Sub" (each level escaped)
//   <folder dir>/tern-index.lmdb (+ -lock)  the index (or under index_dir)
//   ROOT/subscriptions           one folder name per line
//   ROOT/tern-special-use        "\Sent Sent" lines
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "lib/core/result.hpp"
#include "lib/mailstore/mailstore.hpp"

namespace tern::mailstore {

struct MaildirOptions {
    std::string root;       // the user's Maildir (the INBOX)
    std::string index_dir;  // empty: each index lives in its folder's directory
    uint64_t quota_bytes = 0;  // Maildir++ quota the usage is kept for (0 = none)
    bool create = true;        // create ROOT (and INBOX's subdirectories) when missing
};

Result<std::unique_ptr<Store>> open_maildir_store(const MaildirOptions& options);

// The directory name of a folder below ROOT: "Sent/2024" → ".Sent.2024";
// '.', '/', '%', '~' at the start and control bytes are %XX-escaped.
std::string folder_dir_name(std::string_view folder);
// The inverse; nullopt for a name that is not a folder directory.
std::optional<std::string> folder_from_dir_name(std::string_view dir_name);

}  // namespace tern::mailstore
