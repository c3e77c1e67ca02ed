// Spare body files: see spare.hpp.
#include "lib/queue/spare.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "lib/core/errno_text.hpp"

namespace tern::queue {

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

    void run() {
        std::unique_lock lock(mutex);
        while (!stopping) {
            if (spares.size() >= ready) {
                wanted.wait(lock);
                continue;
            }
            std::string name = prefix + std::to_string(++seq);
            lock.unlock();
            std::string path = dir + "/" + name;
            Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
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

}  // namespace tern::queue
