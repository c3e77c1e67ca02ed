// Spare body files: see spare.hpp.
#include "lib/queue/spare.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "lib/core/errno_text.hpp"

namespace tern::queue {
namespace {

constexpr std::string_view kRecycled = "r.";  // spare/r.<queue id>: a finished body
// How many recycled bodies may wait: any body up to kMaxRecycledSize while
// fewer than kMaxRecycled wait, small ones up to kMaxRecycledSmall (a burst
// delivered after accept stopped -- every body finished then -- would else
// unlink most of them, and the next burst create them again).  At most
// 128 x 256 KiB + 896 x 16 KiB = 46 MiB of disk wait.
constexpr size_t kMaxRecycled = 128;
constexpr size_t kMaxRecycledSmall = 1024;
constexpr off_t kSmallSize = 16 * 1024;
constexpr unsigned kCountEvery = 32;       // recycle() counts spare/ once per this many calls
constexpr off_t kMaxRecycledSize = 256 * 1024;  // larger bodies are unlinked: bounded disk use
constexpr auto kRescan = std::chrono::milliseconds(200);

// Up to `max` names of recycled bodies in dir.
std::vector<std::string> recycled_names(const std::string& dir, size_t max) {
    std::vector<std::string> out;
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
    if (!d) return out;
    while (dirent* e = ::readdir(d.get())) {
        if (std::string_view(e->d_name).starts_with(kRecycled)) out.emplace_back(e->d_name);
        if (out.size() >= max) break;
    }
    return out;
}

// Renames dir/name to dir/target and returns it open at offset 0 and open
// nowhere else; invalid (and the file gone) when any check fails.  The old
// content stays: truncating to 0 here would free the file's blocks, which
// the body's writer then allocates again (a block bitmap written at its
// fdatasync, and on a file system mounted with -o discard a discard request
// per freed extent); the writer overwrites from the start and cuts the file
// at its own end (spare.hpp).
Fd claim(const std::string& dir, const std::string& name, const std::string& target) {
    std::string from = dir + "/" + name, to = dir + "/" + target;
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) return Fd();
    Fd fd(::open(to.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    struct stat st {};
    bool ok = bool(fd) && ::fcntl(fd.get(), F_SETLEASE, F_WRLCK) == 0;
    if (ok) {
        ok = ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1;
        (void)::fcntl(fd.get(), F_SETLEASE, F_UNLCK);
    }
    if (ok) ok = ::fcntl(fd.get(), F_SETFL, O_RDWR) == 0;  // blocking again, like a created body
    if (ok) return fd;
    ::unlink(to.c_str());
    return Fd();
}

}  // namespace

struct SpareFiles::Impl {
    std::string dir;
    std::string prefix;  // "<pid>."
    size_t ready = 0;
    std::mutex mutex;
    std::condition_variable wanted;
    std::deque<std::pair<std::string, Fd>> spares;  // names in dir, open fds
    bool stopping = false;
    unsigned long seq = 0;
    std::thread thread;
    std::vector<std::string> recycled;  // names found by the last scan, not yet claimed
    std::chrono::steady_clock::time_point next_scan{};

    void run() {
        std::unique_lock lock(mutex);
        while (!stopping) {
            if (spares.size() >= ready) {
                wanted.wait(lock);
                continue;
            }
            std::string name = prefix + std::to_string(++seq);
            lock.unlock();
            Fd fd = reuse(name);
            if (!fd) {
                std::string path = dir + "/" + name;
                fd = Fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
            }
            lock.lock();
            if (!fd) {
                // Full disk, removed directory: the loop creates in place;
                // try again when the next spare is taken.
                wanted.wait(lock);
                continue;
            }
            spares.emplace_back(std::move(name), std::move(fd));
        }
    }

    // A recycled body made into the spare `name`, if one is waiting.
    Fd reuse(const std::string& name) {
        if (recycled.empty()) {
            auto now = std::chrono::steady_clock::now();
            if (now < next_scan) return Fd();
            recycled = recycled_names(dir, 64);
            if (recycled.empty()) next_scan = now + kRescan;
        }
        while (!recycled.empty()) {
            std::string found = std::move(recycled.back());
            recycled.pop_back();
            if (Fd fd = claim(dir, found, name)) return fd;  // else another smtpd took it, or unusable
        }
        return Fd();
    }

    // Spares of processes that no longer exist (a crash, a restart).
    void remove_leftovers() {
        std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
        if (!d) return;
        while (dirent* e = ::readdir(d.get())) {
            std::string_view name = e->d_name;
            auto dot = name.find('.');
            if (dot == 0 || dot == std::string_view::npos) continue;
            pid_t pid = 0;
            auto [ptr, ec] = std::from_chars(name.data(), name.data() + dot, pid);
            if (ec != std::errc() || ptr != name.data() + dot) continue;
            if (pid == ::getpid() || (::kill(pid, 0) != 0 && errno == ESRCH))
                ::unlinkat(dirfd(d.get()), e->d_name, 0);
        }
    }
};

SpareFiles::SpareFiles(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<SpareFiles>> SpareFiles::start(const std::string& directory, size_t ready) {
    if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) return errno_error("mkdir " + directory);
    auto impl = std::make_unique<Impl>();
    impl->dir = directory;
    impl->prefix = std::to_string(::getpid()) + ".";
    impl->ready = ready < 1 ? 1 : ready;
    impl->remove_leftovers();
    Impl* raw = impl.get();
    impl->thread = std::thread([raw] { raw->run(); });
    return std::unique_ptr<SpareFiles>(new SpareFiles(std::move(impl)));
}

SpareFiles::~SpareFiles() {
    {
        std::lock_guard lock(impl_->mutex);
        impl_->stopping = true;
    }
    impl_->wanted.notify_one();
    impl_->thread.join();
    for (auto& [name, fd] : impl_->spares) ::unlink((impl_->dir + "/" + name).c_str());
}

Fd SpareFiles::take(const std::string& path) {
    std::pair<std::string, Fd> spare;
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->spares.empty()) {
            impl_->wanted.notify_one();
            return Fd();
        }
        spare = std::move(impl_->spares.front());
        impl_->spares.pop_front();
    }
    impl_->wanted.notify_one();
    std::string from = impl_->dir + "/" + spare.first;
    // RENAME_NOREPLACE: never replace an existing body (O_EXCL's promise).
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
        ::unlink(from.c_str());
        return Fd();
    }
    return std::move(spare.second);
}

bool SpareFiles::recycle(const std::string& directory, const std::string& body_path, std::string_view queue_id) {
    static std::atomic<unsigned> calls{0};
    static std::atomic<size_t> waiting{0};  // recycled bodies in directory at the last count
    if (calls.fetch_add(1, std::memory_order_relaxed) % kCountEvery == 0)
        waiting.store(recycled_names(directory, kMaxRecycledSmall).size(), std::memory_order_relaxed);
    const size_t n = waiting.load(std::memory_order_relaxed);
    if (n >= kMaxRecycledSmall) return false;
    struct stat st {};
    if (::stat(body_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxRecycledSize) return false;
    if (n >= kMaxRecycled && st.st_size > kSmallSize) return false;
    std::string to = directory + "/" + std::string(kRecycled) + std::string(queue_id);
    return ::renameat2(AT_FDCWD, body_path.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0;
}

}  // namespace tern::queue
