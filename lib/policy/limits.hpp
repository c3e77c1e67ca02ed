// Rate limits, blocks and connection counts shared by every smtpd process.
//
// One LMDB environment in $data_directory/policy, opened with MDB_NOSYNC:
// these are counters, not mail, so losing the last seconds of them in a
// power cut is harmless and a commit costs no disk flush.  Databases:
//   "rate"   "client:<ip>" / "sender:<addr>" → window start (unix s), count
//   "block"  "client:<ip>" / "sender:<addr>" → until (unix s), reason text
//   "conn"   "<ip>\0<pid>"                   → open connections of that pid
// Rate windows are fixed: a window of smtpd_rate_time_unit starts with the
// first message after the previous window ended.  Going over a limit blocks
// the client address (or the sender) for smtpd_block_time; the block is
// logged once, when it is created.  Connection entries are per process so
// that a crashed smtpd's counts are discarded: entries of pids that no
// longer exist are ignored and removed.
//
// mailctl reads and clears blocks through the same class (block list/clear).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"
#include "lib/net/address.hpp"

namespace tern::lmdb {
class Env;
}

namespace tern::policy {

struct Limits {
    long long client_message_rate = 0;  // per unit; 0 = no limit
    long long sender_message_rate = 0;
    int64_t unit_seconds = 60;
    int64_t block_seconds = 3600;
    long long connection_limit = 0;     // per client address, all processes; 0 = none
    // Clients whose messages are not counted (smtpd_rate_limit_exceptions,
    // $mynetworks by default): the site's own hosts are trusted to relay,
    // so a burst from them is the site's own business.
    net::NetworkList exceptions;
};

// Account: an authenticated submission user (per-account send limits);
// its message count is kept under "account:<user>", its recipient count
// under "account-rcpt:<user>", and one block under "account:<user>".
// Uid: a local user submitting through sendmail (qmgr's pickup counts by
// the maildrop file's owner): "uid:<n>" and "uid-rcpt:<n>", like Account.
enum class Kind { Client, Sender, Account, Uid };
std::string_view kind_name(Kind kind);  // "client", "sender", "account", "uid"

struct Block {
    Kind kind = Kind::Client;
    std::string key;     // "192.0.2.1" or "user@example.org"
    int64_t until = 0;   // unix seconds
    std::string reason;  // "message rate 31/60s exceeds limit 30"
};

// Result of counting one message.
struct Verdict {
    bool allowed = true;
    std::optional<Block> new_block;  // set when this message created a block (log it)
};

class LimitsStore {
public:
    // Opens (creating) <data_directory>/policy.
    static Result<std::unique_ptr<LimitsStore>> open(const std::string& data_directory);
    // For mailctl: a null pointer when the environment does not exist yet (no
    // blocks), so that root never creates files smtpd then cannot open.
    static Result<std::unique_ptr<LimitsStore>> open_existing(const std::string& data_directory);
    ~LimitsStore();

    // An unexpired block of this client address or sender, if any.
    Result<std::optional<Block>> blocked(Kind kind, std::string_view key, int64_t now) const;

    // Counts one message for `key` and blocks it when the count goes over
    // `limit` within the window.  limit <= 0: nothing is counted.
    Result<Verdict> count_message(Kind kind, std::string_view key, long long limit, const Limits& limits,
                                  int64_t now);

    // Counts `amount` recipients of an account and blocks the account
    // (Kind::Account) when the count goes over `limit` within the window.
    Result<Verdict> count_account_recipients(std::string_view user, long long amount, long long limit,
                                             const Limits& limits, int64_t now);
    // The same for Account or Uid keys ("<kind>-rcpt:<key>").
    Result<Verdict> count_recipients(Kind kind, std::string_view key, long long amount, long long limit,
                                     const Limits& limits, int64_t now);

    // Connection tracking.  connect() records one more connection of this
    // process from ip and returns the number open from ip across all live
    // processes, this one included.
    Result<long long> connect(std::string_view ip, pid_t pid);
    Status disconnect(std::string_view ip, pid_t pid);
    // Removes every connection entry of pid (at start: a previous process
    // with our pid died without cleaning up).
    Status forget_process(pid_t pid);

    // Removes rate windows that ended and blocks that expired, so that the
    // database does not grow with every address ever seen.  count_message()
    // calls it now and then; returns the number of entries removed.
    Result<size_t> prune(int64_t now, int64_t unit_seconds);

    // For mailctl.
    Result<std::vector<Block>> list_blocks(int64_t now) const;
    // Removes blocks and rate counters of `key` (client address or sender);
    // returns how many blocks were removed.
    Result<int> clear(std::string_view key);

private:
    explicit LimitsStore(std::unique_ptr<lmdb::Env> env);
    Status open_databases();
    Result<Verdict> count(Kind kind, std::string_view key, const std::string& rate_key, long long amount,
                          long long limit, const Limits& limits, int64_t now, const char* what);
    struct Dbs;
    std::unique_ptr<lmdb::Env> env_;
    std::unique_ptr<Dbs> dbs_;
    unsigned counted_ = 0;
};

// True when a process with this pid exists (kill(pid, 0)).
bool process_alive(pid_t pid);

}  // namespace tern::policy
