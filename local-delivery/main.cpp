// local-delivery: the local delivery agent.  Wiring only: worker start-up,
// the lookup tables, the Agent and its socket.  See agent.hpp for what it
// does, resolve.hpp for how recipients are found, docs/local-delivery.md.
#include <unistd.h>

#include "lib/daemon/worker.hpp"
#include "lib/event/loop.hpp"
#include "lib/log/log.hpp"
#include "lib/tables/recipient_check.hpp"
#include "local-delivery/agent.hpp"
#include "local-delivery/server.hpp"

using namespace tern;

int main(int argc, char** argv) {
    daemon::WorkerContext ctx = daemon::start_worker(argc, argv, "local-delivery");
    const config::Config& config = ctx.config;
    if (ctx.listeners.empty()) log::fatal("no listening socket passed (run me from master)");

    // local-delivery keeps root: each delivery switches to the recipient
    // (identity.hpp).  Without root, everything is written as ourselves.
    if (::geteuid() != 0) log::warning("not running as root: every mailbox is written as uid %d", int(::geteuid()));

    auto tables = tables::RecipientCheck::open(config);
    if (!tables) log::fatal("%s", tables.message().c_str());
    local::Agent agent(std::move(*tables), local::Settings::from(config));

    event::Base base = event::make_base();
    local::Server server(base.get(), std::move(ctx.listeners), agent);

    // Graceful stop: a delivery in progress has already finished (it runs
    // inside a callback); requests already read are delivered and answered,
    // and answers still being written get up to 5 s to reach qmgr.
    int drain_ticks = 0;
    event::Watch drain = event::timer(base.get(), [&](short) {
        server.close_idle();
        if (server.connections() == 0 || ++drain_ticks > 50) {
            event_base_loopexit(base.get(), nullptr);
            return;
        }
        drain.add(std::chrono::milliseconds(100));
    });
    daemon::LoopHandlers handlers;
    handlers.on_stop = [&] {
        server.stop();
        drain.activate();
    };
    handlers.on_reload = [&] { agent.refresh_tables(); };
    daemon::notify_ready();
    return daemon::run_loop(base.get(), handlers);
}
