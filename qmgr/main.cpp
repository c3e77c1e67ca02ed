// qmgr: the queue manager.  Wiring only: worker start-up, the Store, maildrop
// pickup, the scheduler and its socket; see scheduler.hpp for what it does.
#include <sys/stat.h>

#include "lib/config/services.hpp"
#include "lib/daemon/worker.hpp"
#include "lib/event/loop.hpp"
#include "lib/log/log.hpp"
#include "lib/queue/queue.hpp"
#include "qmgr/control.hpp"
#include "qmgr/pickup.hpp"
#include "qmgr/route.hpp"
#include "qmgr/scheduler.hpp"

using namespace tern;

int main(int argc, char** argv) {
    daemon::WorkerContext ctx = daemon::start_worker(argc, argv, "qmgr");
    const config::Config& config = ctx.config;

    auto store = queue::Store::open(config.get("queue_directory"));
    if (!store) log::fatal("cannot open the queue: %s", store.message().c_str());
    // The maildrop may be missing in a fresh spool; create it like the
    // install step would (dev/test: owned by the running user).
    std::string maildrop = config.get("queue_directory") + "/maildrop";
    ::mkdir(maildrop.c_str(), 0730);

    auto services = config::load_services(config);
    if (!services) log::fatal("services.conf: %s", services.message().c_str());
    auto router = qmgr::Router::create(config, *services);
    if (!router) log::fatal("%s", router.message().c_str());

    event::enable_threads();  // the Bookkeeper's worker wakes the loop
    event::Base base = event::make_base();
    qmgr::Pickup pickup(config, **store);
    qmgr::Scheduler scheduler(base.get(), qmgr::SchedulerSettings::from(config), **store, std::move(*router), pickup);
    qmgr::ControlSocket control(base.get(), std::move(ctx.listeners), scheduler);
    scheduler.start();

    // Graceful stop: no new dispatches; requests in flight get up to 10 s
    // to answer so their results are recorded (otherwise they are simply
    // delivered again after the restart — a duplicate, never a loss), and
    // their status writes get committed.
    int drain_ticks = 0;
    event::Watch drain = event::timer(base.get(), [&](short) {
        if ((scheduler.requests_in_flight() == 0 && scheduler.writes_in_flight() == 0) || ++drain_ticks > 100) {
            event_base_loopexit(base.get(), nullptr);
            return;
        }
        drain.add(std::chrono::milliseconds(100));
    });
    daemon::LoopHandlers handlers;
    handlers.on_stop = [&] {
        control.close_listeners();
        scheduler.stop();
        drain.activate();
    };
    daemon::notify_ready();
    return daemon::run_loop(base.get(), handlers);
}
