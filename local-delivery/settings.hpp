// local-delivery's settings, read once from tern.conf (keys documented in
// lib/config/config_keys.cpp and docs/local-delivery.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>

#include "lib/config/config.hpp"
#include "lib/mbox/mbox.hpp"

namespace tern::local {

struct Settings {
    std::string home_mailbox;          // "" = spool mbox, "Maildir/" = ~/Maildir/, else a file in the home
    std::string mail_spool_directory;
    std::string mail_directory;        // virtual mailboxes
    std::string vmail_user;
    std::string default_privs;         // commands/files from root-owned aliases and includes
    std::string default_user;          // writes forwarded copies into the maildrop
    std::string queue_directory;
    std::string run_directory;
    std::string delimiters;
    uint64_t mailbox_size_limit = 0;
    uint64_t virtual_mailbox_limit = 0;
    std::set<std::string> allow_commands;  // of "alias", "forward", "include"
    std::set<std::string> allow_files;
    std::chrono::seconds command_time_limit{1000};
    mbox::LockOptions lock;

    static Settings from(const config::Config& config);
};

}  // namespace tern::local
