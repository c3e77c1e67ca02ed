// local-delivery's settings: see settings.hpp.
#include "local-delivery/settings.hpp"

namespace tern::local {

Settings Settings::from(const config::Config& c) {
    Settings s;
    s.home_mailbox = c.get("home_mailbox");
    s.mail_spool_directory = c.get("mail_spool_directory");
    s.mail_directory = c.get("mail_directory");
    s.vmail_user = c.get("vmail_user");
    s.default_privs = c.get("default_privs");
    s.default_user = c.get("default_user");
    s.queue_directory = c.get("queue_directory");
    s.run_directory = c.get("run_directory");
    s.delimiters = c.get("recipient_delimiter");
    s.mailbox_size_limit = c.get_size("mailbox_size_limit");
    s.virtual_mailbox_limit = c.get_size("virtual_mailbox_limit");
    for (const auto& v : c.get_list("allow_mail_to_commands")) s.allow_commands.insert(v);
    for (const auto& v : c.get_list("allow_mail_to_files")) s.allow_files.insert(v);
    s.command_time_limit = c.get_duration("command_time_limit");
    s.lock.attempts = static_cast<int>(std::max<long long>(1, c.get_int("deliver_lock_attempts")));
    s.lock.delay = std::chrono::duration_cast<std::chrono::milliseconds>(c.get_duration("deliver_lock_delay"));
    s.lock.stale_after = c.get_duration("stale_lock_time");
    return s;
}

}  // namespace tern::local
