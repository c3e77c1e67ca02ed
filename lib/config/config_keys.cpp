// The one table of every tern.conf key: name, kind, default, doc line.
//
// Sorted by name (a unit test checks it).  Defaults
// may reference other keys with $name; they are expanded when read, so all
// paths follow the few directory keys.  `myhostname` and `mydomain` have
// computed defaults (see config.cpp) and an empty default here.  Helpers add
// their keys here, keeping the order.
#include <algorithm>

#include "lib/config/config.hpp"

namespace tern::config {

namespace {

const std::vector<KeyInfo> kKeys = {
    {"alias_maps", Kind::Path, "$config_directory/aliases",
     "aliases(5) file for local recipients (compiled to LMDB by newaliases)"},
    {"allow_mail_to_commands", Kind::List, "alias, forward",
     "where |command destinations are allowed: alias, forward, include"},
    {"allow_mail_to_files", Kind::List, "alias, forward",
     "where /file/name destinations are allowed: alias, forward, include"},
    {"bounce_queue_lifetime", Kind::Duration, "5d",
     "how long a bounce message (null sender) is retried before it is dropped"},
    {"bounce_size_limit", Kind::Size, "50000",
     "largest original message returned whole in a bounce; larger ones: headers only"},
    {"command_time_limit", Kind::Duration, "1000s",
     "time limit for a |command delivery by local-delivery (then deferred)"},
    {"config_directory", Kind::Path, "",
     "the directory tern.conf was loaded from (implicit, cannot be set in the file)"},
    {"daemon_directory", Kind::Path, "/usr/libexec/tern",
     "where master finds the worker programs named in services.conf"},
    {"data_directory", Kind::Path, "/var/lib/tern",
     "writable state that is not mail: compiled tables, caches, TLS session keys"},
    {"debug", Kind::Bool, "no",
     "log debug-level lines as well"},
    {"default_privs", Kind::String, "nobody",
     "user for |command and /file deliveries from root-owned aliases or :include: files"},
    {"default_user", Kind::String, "tern",
     "the user a service runs as when its user field in services.conf is -"},
    {"delay_warning_time", Kind::Duration, "0",
     "send the sender a delay notice after mail has waited this long (0 = never)"},
    {"deliver_lock_attempts", Kind::Int, "10",
     "attempts to lock an mbox file before the delivery is deferred"},
    {"deliver_lock_delay", Kind::Duration, "1s",
     "time between mbox lock attempts"},
    {"home_mailbox", Kind::String, "",
     "local mailbox relative to the home directory; empty = mbox in mail_spool_directory, "
     "\"Maildir/\" = Maildir in the home"},
    {"local_destination_concurrency_limit", Kind::Int, "10",
     "maximum parallel deliveries to the same local recipient"},
    {"log_target", Kind::String, "syslog",
     "where logs go: syslog, stderr, or an absolute file path"},
    {"mail_directory", Kind::Path, "/var/vmail",
     "root of the virtual mailboxes (owned by vmail_user): <domain>/<user>/ (cur, new, tmp)"},
    {"mail_spool_directory", Kind::Path, "/var/mail",
     "where mbox files of local users live when home_mailbox is empty"},
    {"mailbox_size_limit", Kind::Size, "51200000",
     "largest mbox file or single Maildir message local delivery writes (0 = no limit)"},
    {"master_crash_limit", Kind::Int, "5",
     "crashes within master_crash_window after which master throttles a service"},
    {"master_crash_window", Kind::Duration, "60s",
     "the time window in which master counts a service's crashes"},
    {"master_restart_backoff_max", Kind::Duration, "60s",
     "longest delay master waits before restarting a throttled service"},
    {"master_stop_timeout", Kind::Duration, "10s",
     "how long master waits for workers to drain on stop before it kills them"},
    {"maximal_backoff_time", Kind::Duration, "4000s",
     "longest time between two delivery attempts of a deferred message"},
    {"maximal_queue_lifetime", Kind::Duration, "5d",
     "how long a message is retried before it bounces as undeliverable"},
    {"message_size_limit", Kind::Size, "10240000",
     "largest message accepted, in bytes (SMTP SIZE, RFC 1870)"},
    {"minimal_backoff_time", Kind::Duration, "300s",
     "shortest time between two delivery attempts of a deferred message"},
    {"mydestination", Kind::List, "$myhostname, localhost.$mydomain, localhost",
     "domains delivered to local (UNIX) users"},
    {"mydomain", Kind::String, "",
     "the internet domain of this system; default: myhostname minus its first label, "
     "or \"localdomain\""},
    {"myhostname", Kind::String, "",
     "the fully qualified host name of this system; default: from gethostname()"},
    {"mynetworks", Kind::List, "127.0.0.0/8 [::1]/128",
     "client networks trusted to relay without authentication"},
    {"myorigin", Kind::String, "$myhostname",
     "domain appended to bare local sender and recipient names"},
    {"queue_directory", Kind::Path, "/var/spool/tern",
     "the mail queue: LMDB state and message files"},
    {"queue_run_delay", Kind::Duration, "300s",
     "how often qmgr scans the deferred queue for messages due for retry"},
    {"recipient_delimiter", Kind::String, "+",
     "separates user and extension in local parts (user+tag); empty = none"},
    {"run_directory", Kind::Path, "/run/tern",
     "sockets and pid files (master control socket, qmgr and local sockets)"},
    {"setgid_group", Kind::String, "tern-drop",
     "sendmail(1)'s setgid group: owns the maildrop and the public/pickup wake-up FIFO"},
    {"smtpd_banner", Kind::String, "$myhostname ESMTP tern",
     "text after 220 in the SMTP greeting (RFC 5321 4.3.1)"},
    {"smtpd_block_time", Kind::Duration, "3600s",
     "how long a client over a rate limit stays refused"},
    {"smtpd_client_connection_limit", Kind::Int, "50",
     "simultaneous connections allowed from one client address (0 = no limit)"},
    {"smtpd_client_message_rate_limit", Kind::Int, "0",
     "messages one client address may send per smtpd_rate_time_unit (0 = no limit)"},
    {"smtpd_data_timeout", Kind::Duration, "600s",
     "time allowed to receive the whole DATA section (RFC 5321 4.5.3.2.6)"},
    {"smtpd_hard_error_limit", Kind::Int, "20",
     "errors after which smtpd disconnects the client"},
    {"smtpd_line_length_limit", Kind::Int, "2048",
     "longest SMTP command or text line accepted, in bytes (RFC 5321 4.5.3.1)"},
    {"smtpd_mode", Kind::String, "smtp",
     "smtp (port 25), submission (587, AUTH required) or smtps (465, implicit TLS)"},
    {"smtpd_rate_time_unit", Kind::Duration, "60s",
     "the time unit of the smtpd rate limits"},
    {"smtpd_recipient_limit", Kind::Int, "1000",
     "most recipients accepted per message (RFC 5321 4.5.3.1.8 asks for at least 100)"},
    {"smtpd_sender_message_rate_limit", Kind::Int, "0",
     "messages one authenticated sender may send per smtpd_rate_time_unit (0 = no limit)"},
    {"smtpd_soft_error_limit", Kind::Int, "10",
     "errors after which smtpd delays each reply by a second"},
    {"smtpd_timeout", Kind::Duration, "300s",
     "time allowed for the client to send a command (RFC 5321 4.5.3.2.7)"},
    {"smtpd_tls_cert_file", Kind::Path, "$config_directory/tls/cert.pem",
     "PEM certificate chain for STARTTLS and smtps; empty = no TLS"},
    {"smtpd_tls_key_file", Kind::Path, "$config_directory/tls/key.pem",
     "PEM private key for smtpd_tls_cert_file"},
    {"smtpd_tls_security_level", Kind::String, "may",
     "none (no STARTTLS), may (offer STARTTLS), encrypt (require TLS before MAIL)"},
    {"smtpd_vrfy", Kind::Bool, "no",
     "answer VRFY with real results (no = 252 without lookup, RFC 5321 3.5.3)"},
    {"stale_lock_time", Kind::Duration, "500s",
     "an mbox dot-lock file older than this is removed as stale"},
    {"virtual_mailbox_domains", Kind::List, "",
     "domains whose users are virtual mailboxes under mail_directory"},
    {"virtual_mailbox_limit", Kind::Size, "0",
     "largest total size of one virtual mailbox (0 = no limit)"},
    {"virtual_mailbox_maps", Kind::Path, "$config_directory/users",
     "virtual users file: address:{SCHEME}password-hash[:extra fields]"},
    {"vmail_user", Kind::String, "vmail",
     "the user owning every virtual mailbox under mail_directory"},
};

}  // namespace

const std::vector<KeyInfo>& all_keys() { return kKeys; }

const KeyInfo* find_key(std::string_view name) {
    // A linear scan: the table is small, and a key added out of order must
    // still be found (the unit test reports the order).
    auto it = std::find_if(kKeys.begin(), kKeys.end(), [&](const KeyInfo& k) { return k.name == name; });
    return it == kKeys.end() ? nullptr : &*it;
}

}  // namespace tern::config
