// CompiledTable: see compiled_table.hpp.
#include "lib/tables/compiled_table.hpp"

#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "lib/core/errno_text.hpp"
#include "lib/core/fd.hpp"

namespace tern::tables {
namespace {

// The stamp lives under a key no table entry can have (entries never hold NUL).
constexpr std::string_view kStampKey{"\0tern-source", 12};

Error mdb_error(const std::string& what, int rc) {
    return make_error(what + ": " + mdb_strerror(rc));
}

struct EnvCloser {
    void operator()(MDB_env* env) const { mdb_env_close(env); }
};
using EnvPtr = std::unique_ptr<MDB_env, EnvCloser>;

Result<EnvPtr> open_env(const std::string& path, unsigned flags, size_t map_size) {
    MDB_env* raw = nullptr;
    int rc = mdb_env_create(&raw);
    if (rc != 0) return mdb_error("mdb_env_create", rc);
    EnvPtr env(raw);
    if (map_size != 0 && (rc = mdb_env_set_mapsize(raw, map_size)) != 0)
        return mdb_error("mdb_env_set_mapsize " + path, rc);
    // 0600 while it is written: the final mode comes from the source (below).
    rc = mdb_env_open(raw, path.c_str(), flags | MDB_NOSUBDIR | MDB_NOLOCK, 0600);
    if (rc != 0) return mdb_error("open " + path, rc);
    return env;
}

Status fsync_dir_of(const std::string& path) {
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return errno_error("open " + dir);
    if (::fsync(fd.get()) != 0) return errno_error("fsync " + dir);
    return {};
}

bool dir_writable(const std::string& path) {
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    return ::access(dir.c_str(), W_OK) == 0;
}

}  // namespace

struct CompiledTable::Env {
    EnvPtr env;
    MDB_dbi dbi = 0;
};

std::string SourceStamp::to_string() const {
    return std::to_string(mtime_ns) + " " + std::to_string(size) + " " + std::to_string(inode);
}

Result<SourceStamp> stamp_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return errno_error("stat " + path);
    SourceStamp s;
    s.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    s.size = static_cast<long long>(st.st_size);
    s.inode = static_cast<unsigned long long>(st.st_ino);
    return s;
}

std::string compiled_path_for(const std::string& source_path) { return source_path + ".lmdb"; }

Status write_compiled(const std::string& source_path, const TableEntries& entries,
                      const SourceStamp& stamp) {
    std::string final_path = compiled_path_for(source_path);
    std::string tmp_path = final_path + ".tmp." + std::to_string(::getpid());
    ::unlink(tmp_path.c_str());
    size_t bytes = 0;
    for (const auto& [k, v] : entries) bytes += k.size() + v.size() + 64;
    size_t map_size = 1024 * 1024 + bytes * 4;
    {
        auto env = open_env(tmp_path, 0, map_size);
        if (!env) return env.error();
        MDB_txn* txn = nullptr;
        int rc = mdb_txn_begin(env->get(), nullptr, 0, &txn);
        if (rc != 0) return mdb_error("mdb_txn_begin " + tmp_path, rc);
        MDB_dbi dbi;
        rc = mdb_dbi_open(txn, nullptr, 0, &dbi);
        for (size_t i = 0; rc == 0 && i <= entries.size(); ++i) {
            std::string_view key, value;
            std::string stamp_text;
            if (i == entries.size()) {
                stamp_text = stamp.to_string();
                key = kStampKey;
                value = stamp_text;
            } else {
                key = entries[i].first;
                value = entries[i].second;
                if (key.empty() || key.size() > 500) continue;  // LMDB's key limit is 511
            }
            MDB_val k{key.size(), const_cast<char*>(key.data())};
            MDB_val v{value.size(), const_cast<char*>(value.data())};
            rc = mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE);
            if (rc == MDB_KEYEXIST) rc = 0;  // first entry wins, as in postalias
        }
        if (rc != 0) {
            mdb_txn_abort(txn);
            ::unlink(tmp_path.c_str());
            return mdb_error("write " + tmp_path, rc);
        }
        if ((rc = mdb_txn_commit(txn)) != 0) {
            ::unlink(tmp_path.c_str());
            return mdb_error("commit " + tmp_path, rc);
        }
        if ((rc = mdb_env_sync(env->get(), 1)) != 0) {
            ::unlink(tmp_path.c_str());
            return mdb_error("sync " + tmp_path, rc);
        }
    }
    // The compiled form is exactly as private as its source, like postmap:
    // users (0640 root:tern, soon password hashes) stays unreadable to
    // others, aliases (0644) stays public.  Owner and group follow when we
    // may set them (root); otherwise the file keeps ours, still no more
    // open than the source.
    struct stat src {};
    if (::stat(source_path.c_str(), &src) == 0) {
        if (::geteuid() == 0 && ::chown(tmp_path.c_str(), src.st_uid, src.st_gid) != 0) {
            auto err = errno_error("chown " + tmp_path);
            ::unlink(tmp_path.c_str());
            return err;
        }
        if (::chmod(tmp_path.c_str(), src.st_mode & 0666) != 0) {
            auto err = errno_error("chmod " + tmp_path);
            ::unlink(tmp_path.c_str());
            return err;
        }
    }
    // Readers must never see a half-written table: rename only a synced file.
    if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
        auto err = errno_error("rename " + tmp_path + " to " + final_path);
        ::unlink(tmp_path.c_str());
        return err;
    }
    return fsync_dir_of(final_path);
}

Status compile_table(const std::string& source_path, const TableBuilder& build) {
    auto before = stamp_of(source_path);
    if (!before) return before.error();
    auto entries = build(source_path);
    if (!entries) return entries.error();
    auto after = stamp_of(source_path);
    if (!after) return after.error();
    // An edit while we read would compile a mix; the stamp must describe what we read.
    if (!(*before == *after)) return make_error(source_path + " changed while being compiled; try again");
    return write_compiled(source_path, *entries, *after);
}

CompiledTable::CompiledTable(CompiledTable&&) noexcept = default;
CompiledTable& CompiledTable::operator=(CompiledTable&&) noexcept = default;
CompiledTable::~CompiledTable() = default;

Result<CompiledTable> CompiledTable::open(const std::string& source_path, TableBuilder build) {
    struct stat st {};
    if (::stat(source_path.c_str(), &st) != 0) return errno_error("stat " + source_path);
    auto stamp = stamp_of(source_path);
    if (!stamp) return stamp.error();
    std::string compiled = compiled_path_for(source_path);

    for (int attempt = 0; attempt < 2; ++attempt) {
        CompiledTable table;
        table.source_ = source_path;
        table.build_ = build;
        table.stamp_ = *stamp;
        table.owner_ = st.st_uid;
        struct stat cst {};
        bool fresh = false;
        if (::stat(compiled.c_str(), &cst) == 0) {
            auto env = open_env(compiled, MDB_RDONLY, 0);
            if (env) {
                table.env_ = std::make_unique<Env>();
                table.env_->env = std::move(*env);
                MDB_txn* txn = nullptr;
                if (mdb_txn_begin(table.env_->env.get(), nullptr, MDB_RDONLY, &txn) == 0) {
                    if (mdb_dbi_open(txn, nullptr, 0, &table.env_->dbi) == 0) {
                        MDB_val k{kStampKey.size(), const_cast<char*>(kStampKey.data())}, v;
                        if (mdb_get(txn, table.env_->dbi, &k, &v) == 0)
                            fresh = std::string_view(static_cast<char*>(v.mv_data), v.mv_size) ==
                                    stamp->to_string();
                    }
                    mdb_txn_abort(txn);
                }
                table.compiled_inode_ = cst.st_ino;
            }
        }
        if (fresh) return table;
        if (attempt == 1) break;
        bool can_build = ::access(source_path.c_str(), R_OK) == 0 && dir_writable(compiled);
        if (!can_build)
            return make_error(compiled + " is missing or older than " + source_path +
                              " and cannot be rebuilt here (run newaliases / mailctl tables); refusing to use it");
        auto st2 = compile_table(source_path, build);
        if (!st2) return make_error("rebuild " + compiled + ": " + st2.message());
        stamp = stamp_of(source_path);
        if (!stamp) return stamp.error();
    }
    return make_error(compiled + " does not match " + source_path + " after rebuilding");
}

Result<std::optional<std::string>> CompiledTable::get(std::string_view key) const {
    if (!env_) return make_error("table " + source_ + " is not open");
    if (key.empty() || key.size() > 500) return std::optional<std::string>{};
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_->env.get(), nullptr, MDB_RDONLY, &txn);
    if (rc != 0) return mdb_error("read " + compiled_path_for(source_), rc);
    MDB_val k{key.size(), const_cast<char*>(key.data())}, v;
    rc = mdb_get(txn, env_->dbi, &k, &v);
    std::optional<std::string> out;
    if (rc == 0) out.emplace(static_cast<char*>(v.mv_data), v.mv_size);
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND) return mdb_error("read " + compiled_path_for(source_), rc);
    return out;
}

bool CompiledTable::changed() const {
    auto now = stamp_of(source_);
    if (!now || !(*now == stamp_)) return true;
    struct stat cst {};
    if (::stat(compiled_path_for(source_).c_str(), &cst) != 0) return true;
    return cst.st_ino != compiled_inode_;
}

Status CompiledTable::refresh() {
    if (env_ && !changed()) return {};
    auto fresh = open(source_, build_);
    if (!fresh) {
        env_.reset();  // a stale table must not answer
        return fresh.error();
    }
    *this = std::move(*fresh);
    return {};
}

}  // namespace tern::tables
