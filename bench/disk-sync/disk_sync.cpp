// Disk sync primitives: what one durable write costs on the spool's file
// system, so that the group committer's design can be checked against the
// hardware.  Each test runs for a fixed number of operations, in a fresh
// directory under DIR (default /var/tmp), and prints operations per second
// and latency percentiles:
//
//   serial      create 1 KiB file, write, fdatasync, fsync dir, one after another
//   fdatasync   create 1 KiB file, write, fdatasync (no dir fsync)
//   parallel-K  the same fdatasync test from K threads at once (jbd2 merges
//               concurrent commits, so this shows the disk's batched rate)
//   parallel-8+dir  8 threads, fdatasync and then fsync of the (shared) directory
//   syncfs      create 1 KiB file, write, syncfs() (the whole file system)
//   lmdb        one small put + synced commit per transaction
//
//   disk_sync [--dir DIR] [--ops N]
#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;

namespace {

std::string g_dir;
std::string g_body(1024, 'x');

[[noreturn]] void die(const char* what) {
    std::perror(what);
    std::exit(1);
}

struct Stats {
    std::vector<double> lat_us;
    double seconds = 0;
    void print(const char* name, size_t ops) {
        std::sort(lat_us.begin(), lat_us.end());
        auto pct = [&](double p) { return lat_us.empty() ? 0 : lat_us[std::min(lat_us.size() - 1, size_t(p * lat_us.size()))]; };
        std::printf("%-12s ops=%-6zu ops/s=%-8.0f p50=%.0fus p95=%.0fus p99=%.0fus\n", name, ops, ops / seconds,
                    pct(0.5), pct(0.95), pct(0.99));
    }
};

// One durable 1 KiB file; mode: 0 fdatasync, 1 fdatasync + dir fsync, 2 syncfs.
void one_file(const std::string& dir, int dfd, size_t n, int mode) {
    std::string path = dir + "/f" + std::to_string(n);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) die("open");
    if (::write(fd, g_body.data(), g_body.size()) != ssize_t(g_body.size())) die("write");
    if (mode == 2) {
        if (::syncfs(fd) != 0) die("syncfs");
    } else {
        if (::fdatasync(fd) != 0) die("fdatasync");
        if (mode == 1 && ::fsync(dfd) != 0) die("fsync dir");
    }
    ::close(fd);
}

Stats files(const char* name, size_t ops, int threads, int mode) {
    std::string dir = g_dir + "/" + name;
    ::mkdir(dir.c_str(), 0700);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    Stats s;
    std::vector<std::vector<double>> lat(threads);
    auto start = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            for (size_t i = t; i < ops; i += threads) {
                auto a = Clock::now();
                one_file(dir, dfd, i, mode);
                lat[t].push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
            }
        });
    for (auto& th : pool) th.join();
    s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    for (auto& l : lat) s.lat_us.insert(s.lat_us.end(), l.begin(), l.end());
    ::close(dfd);
    return s;
}

Stats lmdb_commits(size_t ops) {
    std::string dir = g_dir + "/lmdb";
    ::mkdir(dir.c_str(), 0700);
    MDB_env* env;
    MDB_dbi dbi;
    if (mdb_env_create(&env) || mdb_env_set_mapsize(env, size_t{64} << 20) || mdb_env_open(env, dir.c_str(), 0, 0600))
        die("mdb_env_open");
    Stats s;
    auto start = Clock::now();
    for (size_t i = 0; i < ops; ++i) {
        auto a = Clock::now();
        MDB_txn* txn;
        if (mdb_txn_begin(env, nullptr, 0, &txn)) die("mdb_txn_begin");
        if (mdb_dbi_open(txn, nullptr, 0, &dbi)) die("mdb_dbi_open");
        std::string key = "k" + std::to_string(i);
        MDB_val k{key.size(), key.data()}, v{200, g_body.data()};
        if (mdb_put(txn, dbi, &k, &v, 0) || mdb_txn_commit(txn)) die("mdb commit");
        s.lat_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
    }
    s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    mdb_env_close(env);
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    std::string base = "/var/tmp";
    size_t ops = 1000;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--dir" && i + 1 < argc) base = argv[++i];
        else if (a == "--ops" && i + 1 < argc) ops = std::strtoul(argv[++i], nullptr, 10);
        else {
            std::fprintf(stderr, "usage: disk_sync [--dir DIR] [--ops N]\n");
            return 2;
        }
    }
    std::string tmpl = base + "/tern-disk-sync-XXXXXX";
    if (!::mkdtemp(tmpl.data())) die("mkdtemp");
    g_dir = tmpl;
    files("serial", ops, 1, 1).print("serial+dir", ops);
    files("fdatasync", ops, 1, 0).print("fdatasync", ops);
    for (int k : {4, 8, 20}) {
        std::string name = "parallel-" + std::to_string(k);
        files(name.c_str(), ops, k, 0).print(name.c_str(), ops);
    }
    files("parallel-8+dir", ops, 8, 1).print("parallel-8+dir", ops);
    files("syncfs", ops / 4, 1, 2).print("syncfs", ops / 4);
    lmdb_commits(ops).print("lmdb-commit", ops);
    std::filesystem::remove_all(g_dir);
    return 0;
}
