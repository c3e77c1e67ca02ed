// Shared rate limits and blocks in LMDB (see limits.hpp).
#include "lib/policy/limits.hpp"

#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "lib/core/errno_text.hpp"
#include "lib/lmdb/lmdb.hpp"

namespace tern::policy {
namespace {

std::string full_key(Kind kind, std::string_view key) {
    std::string out(kind_name(kind));
    out.push_back(':');
    out.append(key);
    return out;
}

// Values: fixed binary headers (host byte order: the file never leaves the host).
struct RateValue {
    int64_t window_start;
    int64_t count;
};

std::string encode_block(int64_t until, std::string_view reason) {
    std::string v(sizeof until, '\0');
    std::memcpy(v.data(), &until, sizeof until);
    v.append(reason);
    return v;
}

bool decode_block(std::string_view v, int64_t& until, std::string& reason) {
    if (v.size() < sizeof until) return false;
    std::memcpy(&until, v.data(), sizeof until);
    reason.assign(v.substr(sizeof until));
    return true;
}

std::string conn_key(std::string_view ip, pid_t pid) {
    std::string k(ip);
    k.push_back('\0');
    int32_t p = pid;
    k.append(reinterpret_cast<const char*>(&p), sizeof p);
    return k;
}

}  // namespace

struct LimitsStore::Dbs {
    lmdb::Dbi rate, block, conn;
};

std::string_view kind_name(Kind kind) {
    switch (kind) {
    case Kind::Client: return "client";
    case Kind::Sender: return "sender";
    case Kind::Account: return "account";
    case Kind::Uid: return "uid";
    }
    return "client";
}

bool process_alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

LimitsStore::LimitsStore(std::unique_ptr<lmdb::Env> env) : env_(std::move(env)), dbs_(std::make_unique<Dbs>()) {}
LimitsStore::~LimitsStore() = default;

Result<std::unique_ptr<LimitsStore>> LimitsStore::open(const std::string& data_directory) {
    std::string path = data_directory + "/policy";
    if (::mkdir(data_directory.c_str(), 0755) != 0 && errno != EEXIST) return errno_error("mkdir " + data_directory);
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("mkdir " + path);
    lmdb::Env::Options options;
    options.flags = MDB_NOSYNC;
    options.map_size = size_t{16} << 20;
    auto env = lmdb::Env::open(path, options);
    if (!env) return env.error();
    std::unique_ptr<LimitsStore> store(new LimitsStore(std::move(*env)));
    if (Status s = store->open_databases(); !s) return s.error();
    return store;
}

Result<std::unique_ptr<LimitsStore>> LimitsStore::open_existing(const std::string& data_directory) {
    struct stat st;
    if (::stat((data_directory + "/policy/data.mdb").c_str(), &st) != 0)
        return std::unique_ptr<LimitsStore>();
    return open(data_directory);
}

Status LimitsStore::open_databases() {
    return env_->write([this](lmdb::Txn& txn) -> Status {
        auto r = txn.open_dbi("rate", MDB_CREATE);
        if (!r) return r.error();
        auto b = txn.open_dbi("block", MDB_CREATE);
        if (!b) return b.error();
        auto c = txn.open_dbi("conn", MDB_CREATE);
        if (!c) return c.error();
        dbs_->rate = *r;
        dbs_->block = *b;
        dbs_->conn = *c;
        return {};
    });
}

Result<std::optional<Block>> LimitsStore::blocked(Kind kind, std::string_view key, int64_t now) const {
    auto txn = env_->begin_read();
    if (!txn) return txn.error();
    auto v = txn->get(dbs_->block, full_key(kind, key));
    if (!v) return v.error();
    if (!*v) return std::optional<Block>();
    Block b;
    b.kind = kind;
    b.key = std::string(key);
    if (!decode_block(**v, b.until, b.reason) || b.until <= now) return std::optional<Block>();
    return std::optional<Block>(std::move(b));
}

Result<Verdict> LimitsStore::count_message(Kind kind, std::string_view key, long long limit, const Limits& limits,
                                           int64_t now) {
    return count(kind, key, full_key(kind, key), 1, limit, limits, now, "message rate ");
}

Result<Verdict> LimitsStore::count_account_recipients(std::string_view user, long long amount, long long limit,
                                                      const Limits& limits, int64_t now) {
    return count_recipients(Kind::Account, user, amount, limit, limits, now);
}

Result<Verdict> LimitsStore::count_recipients(Kind kind, std::string_view key, long long amount, long long limit,
                                              const Limits& limits, int64_t now) {
    return count(kind, key, std::string(kind_name(kind)) + "-rcpt:" + std::string(key), amount, limit, limits, now,
                 "recipient rate ");
}

Result<Verdict> LimitsStore::count(Kind kind, std::string_view key, const std::string& rate_key, long long amount,
                                   long long limit, const Limits& limits, int64_t now, const char* what) {
    Verdict verdict;
    if (limit <= 0) return verdict;
    if (++counted_ % 4096 == 0) (void)prune(now, limits.unit_seconds);
    std::string k = full_key(kind, key);
    Status s = env_->write([&](lmdb::Txn& txn) -> Status {
        verdict = Verdict{};
        RateValue rv{now, 0};
        auto v = txn.get(dbs_->rate, rate_key);
        if (!v) return v.error();
        if (*v && (*v)->size() == sizeof rv) std::memcpy(&rv, (*v)->data(), sizeof rv);
        if (now - rv.window_start >= limits.unit_seconds || now < rv.window_start) rv = RateValue{now, 0};
        rv.count += amount;
        if (Status p = txn.put(dbs_->rate, rate_key, std::string_view(reinterpret_cast<const char*>(&rv), sizeof rv)); !p)
            return p;
        if (rv.count <= limit) return {};
        verdict.allowed = false;
        // Already blocked (a concurrent session of the same client): no new block, no new log line.
        auto existing = txn.get(dbs_->block, k);
        if (!existing) return existing.error();
        int64_t until = 0;
        std::string reason;
        if (*existing && decode_block(**existing, until, reason) && until > now) return {};
        Block b;
        b.kind = kind;
        b.key = std::string(key);
        b.until = now + limits.block_seconds;
        b.reason = what + std::to_string(rv.count) + "/" + std::to_string(limits.unit_seconds) +
                   "s exceeds limit " + std::to_string(limit);
        if (Status p = txn.put(dbs_->block, k, encode_block(b.until, b.reason)); !p) return p;
        verdict.new_block = std::move(b);
        return {};
    });
    if (!s) return s.error();
    return verdict;
}

Result<long long> LimitsStore::connect(std::string_view ip, pid_t pid) {
    long long total = 0;
    Status s = env_->write([&](lmdb::Txn& txn) -> Status {
        total = 0;
        std::string mine = conn_key(ip, pid);
        std::string prefix(ip);
        prefix.push_back('\0');
        std::vector<std::string> dead;
        {
            auto cur = txn.cursor(dbs_->conn);
            if (!cur) return cur.error();
            auto e = cur->seek(prefix);
            while (true) {
                if (!e) return e.error();
                if (!*e || (*e)->key.substr(0, prefix.size()) != prefix) break;
                std::string_view key = (*e)->key;
                int32_t p = 0;
                int64_t n = 0;
                if (key.size() == prefix.size() + sizeof p && (*e)->value.size() == sizeof n) {
                    std::memcpy(&p, key.data() + prefix.size(), sizeof p);
                    std::memcpy(&n, (*e)->value.data(), sizeof n);
                    if (p == pid || process_alive(p)) total += n;
                    else dead.emplace_back(key);
                } else {
                    dead.emplace_back(key);
                }
                e = cur->next();
            }
        }
        for (const auto& d : dead)
            if (auto r = txn.del(dbs_->conn, d); !r) return r.error();
        int64_t own = 0;
        auto v = txn.get(dbs_->conn, mine);
        if (!v) return v.error();
        if (*v && (*v)->size() == sizeof own) std::memcpy(&own, (*v)->data(), sizeof own);
        ++own;
        ++total;
        return txn.put(dbs_->conn, mine, std::string_view(reinterpret_cast<const char*>(&own), sizeof own));
    });
    if (!s) return s.error();
    return total;
}

Status LimitsStore::disconnect(std::string_view ip, pid_t pid) {
    return env_->write([&](lmdb::Txn& txn) -> Status {
        std::string mine = conn_key(ip, pid);
        auto v = txn.get(dbs_->conn, mine);
        if (!v) return v.error();
        int64_t own = 0;
        if (*v && (*v)->size() == sizeof own) std::memcpy(&own, (*v)->data(), sizeof own);
        if (own <= 1) {
            auto r = txn.del(dbs_->conn, mine);
            if (!r) return r.error();
            return {};
        }
        --own;
        return txn.put(dbs_->conn, mine, std::string_view(reinterpret_cast<const char*>(&own), sizeof own));
    });
}

Status LimitsStore::forget_process(pid_t pid) {
    return env_->write([&](lmdb::Txn& txn) -> Status {
        std::vector<std::string> mine;
        {
            auto cur = txn.cursor(dbs_->conn);
            if (!cur) return cur.error();
            for (auto e = cur->first();; e = cur->next()) {
                if (!e) return e.error();
                if (!*e) break;
                std::string_view key = (*e)->key;
                int32_t p = 0;
                if (key.size() < sizeof p) continue;
                std::memcpy(&p, key.data() + key.size() - sizeof p, sizeof p);
                if (p == pid || !process_alive(p)) mine.emplace_back(key);
            }
        }
        for (const auto& k : mine)
            if (auto r = txn.del(dbs_->conn, k); !r) return r.error();
        return {};
    });
}

Result<size_t> LimitsStore::prune(int64_t now, int64_t unit_seconds) {
    size_t removed = 0;
    Status s = env_->write([&](lmdb::Txn& txn) -> Status {
        removed = 0;
        std::vector<std::string> stale_rates, stale_blocks;
        {
            auto cur = txn.cursor(dbs_->rate);
            if (!cur) return cur.error();
            for (auto e = cur->first();; e = cur->next()) {
                if (!e) return e.error();
                if (!*e) break;
                RateValue rv{0, 0};
                if ((*e)->value.size() == sizeof rv) std::memcpy(&rv, (*e)->value.data(), sizeof rv);
                if (now - rv.window_start >= unit_seconds) stale_rates.emplace_back((*e)->key);
            }
        }
        {
            auto cur = txn.cursor(dbs_->block);
            if (!cur) return cur.error();
            for (auto e = cur->first();; e = cur->next()) {
                if (!e) return e.error();
                if (!*e) break;
                int64_t until = 0;
                std::string reason;
                if (!decode_block((*e)->value, until, reason) || until <= now) stale_blocks.emplace_back((*e)->key);
            }
        }
        for (const auto& k : stale_rates)
            if (auto r = txn.del(dbs_->rate, k); !r) return r.error();
        for (const auto& k : stale_blocks)
            if (auto r = txn.del(dbs_->block, k); !r) return r.error();
        removed = stale_rates.size() + stale_blocks.size();
        return {};
    });
    if (!s) return s.error();
    return removed;
}

Result<std::vector<Block>> LimitsStore::list_blocks(int64_t now) const {
    std::vector<Block> out;
    auto txn = env_->begin_read();
    if (!txn) return txn.error();
    auto cur = txn->cursor(dbs_->block);
    if (!cur) return cur.error();
    for (auto e = cur->first();; e = cur->next()) {
        if (!e) return e.error();
        if (!*e) break;
        std::string_view key = (*e)->key;
        Block b;
        if (key.rfind("client:", 0) == 0) {
            b.kind = Kind::Client;
            b.key = std::string(key.substr(7));
        } else if (key.rfind("sender:", 0) == 0) {
            b.kind = Kind::Sender;
            b.key = std::string(key.substr(7));
        } else if (key.rfind("account:", 0) == 0) {
            b.kind = Kind::Account;
            b.key = std::string(key.substr(8));
        } else if (key.rfind("uid:", 0) == 0) {
            b.kind = Kind::Uid;
            b.key = std::string(key.substr(4));
        } else {
            continue;
        }
        if (!decode_block((*e)->value, b.until, b.reason) || b.until <= now) continue;
        out.push_back(std::move(b));
    }
    return out;
}

Result<int> LimitsStore::clear(std::string_view key) {
    int removed = 0;
    Status s = env_->write([&](lmdb::Txn& txn) -> Status {
        removed = 0;
        for (Kind kind : {Kind::Client, Kind::Sender, Kind::Account, Kind::Uid}) {
            std::string k = full_key(kind, key);
            auto b = txn.del(dbs_->block, k);
            if (!b) return b.error();
            if (*b) ++removed;
            auto r = txn.del(dbs_->rate, k);
            if (!r) return r.error();
        }
        for (const char* rcpt : {"account-rcpt:", "uid-rcpt:"})
            if (auto r = txn.del(dbs_->rate, rcpt + std::string(key)); !r) return r.error();
        return {};
    });
    if (!s) return s.error();
    return removed;
}

}  // namespace tern::policy
