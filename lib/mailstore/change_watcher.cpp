// The process-wide inotify watcher: see change_watcher.hpp.
#include "lib/mailstore/change_watcher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "lib/core/errno_text.hpp"

namespace tern::mailstore {

class ChangeWatcher {
public:
    static ChangeWatcher& instance();

    Result<std::unique_ptr<ChangeSubscription>> subscribe(const std::vector<std::string>& paths);
    void unsubscribe(ChangeSubscription& s);

private:
    Status start();
    void run();

    std::mutex mutex_;
    pid_t pid_ = 0;
    unsigned long generation_ = 0;
    Fd inotify_;
    std::map<int, std::set<int>> subscribers_;  // watch descriptor → eventfds
};

namespace {
constexpr uint32_t kMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE;
}

ChangeWatcher& ChangeWatcher::instance() {
    // Deliberately never destroyed: the thread may still be blocked in poll()
    // while static destructors run at exit.
    static ChangeWatcher* watcher = new ChangeWatcher;
    return *watcher;
}

Status ChangeWatcher::start() {
    if (pid_ == ::getpid() && inotify_) return {};
    // First use, or first use in a forked child (the parent's thread is not here).
    subscribers_.clear();
    inotify_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!inotify_) return errno_error("inotify_init1");
    pid_ = ::getpid();
    ++generation_;
    std::thread([this, fd = inotify_.get(), gen = generation_] {
        (void)fd;
        (void)gen;
        run();
    }).detach();
    return {};
}

void ChangeWatcher::run() {
    int fd;
    {
        std::lock_guard lock(mutex_);
        fd = inotify_.get();
    }
    alignas(struct inotify_event) char buf[8192];
    for (;;) {
        struct pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            return;
        }
        std::set<int> woken;
        std::lock_guard lock(mutex_);
        if (fd != inotify_.get()) return;  // replaced after fork
        for (ssize_t off = 0; off < n;) {
            auto* ev = reinterpret_cast<struct inotify_event*>(buf + off);
            auto it = subscribers_.find(ev->wd);
            if (it != subscribers_.end()) woken.insert(it->second.begin(), it->second.end());
            if (ev->mask & IN_IGNORED) subscribers_.erase(ev->wd);
            off += static_cast<ssize_t>(sizeof(struct inotify_event) + ev->len);
        }
        uint64_t one = 1;
        for (int efd : woken) (void)!::write(efd, &one, sizeof one);
    }
}

Result<std::unique_ptr<ChangeSubscription>> ChangeWatcher::subscribe(const std::vector<std::string>& paths) {
    std::lock_guard lock(mutex_);
    if (auto s = start(); !s) return s.error();
    std::unique_ptr<ChangeSubscription> sub(new ChangeSubscription);
    sub->event_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!sub->event_) return errno_error("eventfd");
    sub->generation_ = generation_;
    for (const auto& path : paths) {
        int wd = ::inotify_add_watch(inotify_.get(), path.c_str(), kMask);
        if (wd < 0) {
            auto err = errno_error("inotify_add_watch " + path);
            for (int w : sub->watches_) subscribers_[w].erase(sub->event_.get());
            return err;
        }
        subscribers_[wd].insert(sub->event_.get());
        sub->watches_.push_back(wd);
    }
    return sub;
}

void ChangeWatcher::unsubscribe(ChangeSubscription& s) {
    std::lock_guard lock(mutex_);
    if (s.generation_ != generation_ || pid_ != ::getpid()) return;
    for (int wd : s.watches_) {
        auto it = subscribers_.find(wd);
        if (it == subscribers_.end()) continue;
        it->second.erase(s.event_.get());
        if (it->second.empty()) {
            ::inotify_rm_watch(inotify_.get(), wd);
            subscribers_.erase(it);
        }
    }
}

ChangeSubscription::~ChangeSubscription() { ChangeWatcher::instance().unsubscribe(*this); }

void ChangeSubscription::drain() {
    uint64_t v;
    while (::read(event_.get(), &v, sizeof v) > 0) {
    }
}

Result<std::unique_ptr<ChangeSubscription>> watch_paths(const std::vector<std::string>& paths) {
    return ChangeWatcher::instance().subscribe(paths);
}

}  // namespace tern::mailstore
