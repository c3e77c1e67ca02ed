// pickup: relays sendmail's wake-ups to qmgr.  Wiring only.
//
// A user's sendmail runs with the setgid_group only and cannot reach qmgr's
// socket, so it writes a byte into $queue_directory/public/pickup (see
// lib/maildrop/wake.hpp).  This worker, running as the queue owner, holds
// the FIFO open, discards whatever arrives and asks qmgr for a maildrop
// scan — at most one request per kMinInterval, so a user writing in a loop
// costs qmgr no more than ten directory scans a second.  Nothing a user
// writes is interpreted.
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "lib/core/fd.hpp"
#include "lib/daemon/worker.hpp"
#include "lib/event/loop.hpp"
#include "lib/log/log.hpp"
#include "lib/mailq/mailq.hpp"
#include "lib/maildrop/wake.hpp"
#include "lib/sys/files.hpp"

using namespace tern;

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kMinInterval = std::chrono::milliseconds(100);

// The FIFO as the install step made it; created here only when missing
// (the dev stack, a spool made by hand).  Its group decides who may wake us.
Fd open_fifo(const config::Config& config) {
    const std::string path = maildrop::pickup_fifo_path(config);
    const std::string dir = sys::dir_name(path);
    if (::mkdir(dir.c_str(), 0710) != 0 && errno != EEXIST) log::fatal("mkdir %s: %s", dir.c_str(), std::strerror(errno));
    if (::mkfifo(path.c_str(), 0620) == 0) {
        ::chmod(path.c_str(), 0620);  // whatever the umask
        log::info("created %s", path.c_str());
    } else if (errno != EEXIST) {
        log::fatal("mkfifo %s: %s", path.c_str(), std::strerror(errno));
    }
    // O_RDWR: we are also a writer, so the FIFO never reports end-of-file
    // when the last sendmail closes it.  O_NOFOLLOW: never a planted link.
    Fd fd(::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) log::fatal("open %s: %s", path.c_str(), std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISFIFO(st.st_mode)) log::fatal("%s is not a FIFO", path.c_str());
    const std::string group = config.get("setgid_group");
    if (struct group* g = ::getgrnam(group.c_str()); g && st.st_gid != g->gr_gid)
        log::warning("%s is not group %s: users' sendmail cannot wake tern (mail waits for queue_run_delay); "
                     "fix: chgrp %s %s",
                     path.c_str(), group.c_str(), group.c_str(), path.c_str());
    return fd;
}

class Relay {
public:
    Relay(event_base* base, const config::Config& config, Fd fifo)
        : config_(config), fifo_(std::move(fifo)),
          readable_(base, fifo_.get(), EV_READ | EV_PERSIST, [this](short) { drain(); }),
          later_(event::timer(base, [this](short) { poke(); })) {
        readable_.add();
    }
    void stop() {
        readable_ = event::Watch();
        later_ = event::Watch();
    }

private:
    void drain() {
        char buf[4096];
        while (::read(fifo_.get(), buf, sizeof buf) > 0) {
        }
        if (pending_) return;  // a poke is already scheduled
        auto wait = last_ + kMinInterval - Clock::now();
        if (wait <= Clock::duration::zero()) {
            poke();
        } else {
            pending_ = true;
            later_.add(std::chrono::duration_cast<std::chrono::milliseconds>(wait) + std::chrono::milliseconds(1));
        }
    }
    void poke() {
        pending_ = false;
        last_ = Clock::now();
        // qmgr's own periodic scan is the safety net when it is restarting.
        if (auto st = mailq::poke_qmgr(config_, "pickup", 2000); !st) log::debug("qmgr not reached: %s", st.message().c_str());
    }

    const config::Config& config_;
    Fd fifo_;
    event::Watch readable_;
    event::Watch later_;
    Clock::time_point last_{};
    bool pending_ = false;
};

}  // namespace

int main(int argc, char** argv) {
    daemon::WorkerContext ctx = daemon::start_worker(argc, argv, "pickup");
    event::Base base = event::make_base();
    Relay relay(base.get(), ctx.config, open_fifo(ctx.config));
    daemon::LoopHandlers handlers;
    handlers.on_stop = [&] { relay.stop(); };
    daemon::notify_ready();
    return daemon::run_loop(base.get(), handlers);
}
