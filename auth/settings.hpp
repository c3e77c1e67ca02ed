// The auth daemon's settings, read once from tern.conf at start (and again
// on SIGHUP for the users file path and the throttling numbers).
#pragma once

#include <sys/types.h>

#include <set>
#include <string>

#include "auth/throttle.hpp"
#include "lib/config/config.hpp"

namespace tern::authd {

struct Settings {
    std::string users_file;        // virtual_mailbox_maps
    std::string password_file;     // auth_password_file
    std::string mail_directory;
    uint64_t virtual_mailbox_limit = 0;  // quota of virtual users whose entry sets none
    std::string home_mailbox;      // for system users' Maildir: "Maildir/" unless set to another dir
    bool allow_plain = false;
    bool system_users = true;
    long long first_valid_uid = 1000;
    std::set<std::string> services;
    std::set<uid_t> peer_uids;     // who may connect (SO_PEERCRED); our own uid always may
    int threads = 2;
    ThrottleSettings throttle;

    static Settings from(const config::Config& config);
};

}  // namespace tern::authd
