// The auth daemon's settings: see settings.hpp.
#include "auth/settings.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "lib/log/log.hpp"

namespace tern::authd {

Settings Settings::from(const config::Config& c) {
    Settings s;
    s.users_file = c.get("virtual_mailbox_maps");
    s.password_file = c.get("auth_password_file");
    s.mail_directory = c.get("mail_directory");
    s.virtual_mailbox_limit = c.get_size("virtual_mailbox_limit");
    s.home_mailbox = c.get("home_mailbox");
    s.allow_plain = c.get_bool("auth_allow_plain");
    s.system_users = c.get_bool("auth_system_users");
    s.first_valid_uid = c.get_int("auth_first_valid_uid");
    for (const auto& name : c.get_list("auth_services")) s.services.insert(name);
    s.peer_uids.insert(::getuid());
    for (const auto& name : c.get_list("auth_peer_users")) {
        std::vector<char> buf(16384);
        passwd pw{};
        passwd* found = nullptr;
        if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr)
            s.peer_uids.insert(found->pw_uid);
        else
            log::warning("auth_peer_users: no such user '%s'", name.c_str());
    }
    s.threads = static_cast<int>(std::clamp<long long>(c.get_int("auth_threads"), 1, 64));
    s.throttle.delay = std::chrono::milliseconds(std::max<long long>(0, c.get_int("auth_failure_delay")));
    s.throttle.max_delay =
        std::max(s.throttle.delay, std::chrono::milliseconds(std::max<long long>(0, c.get_int("auth_failure_delay_max"))));
    s.throttle.limit = static_cast<int>(std::max<long long>(0, c.get_int("auth_failure_limit")));
    s.throttle.window = c.get_duration("auth_failure_window");
    s.throttle.block_time = c.get_duration("auth_block_time");
    return s;
}

}  // namespace tern::authd
