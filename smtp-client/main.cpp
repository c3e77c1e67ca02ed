// smtp-client: the remote delivery agent.  Wiring only: worker start-up,
// settings, the resolver settings, the Agent and its socket.  See agent.hpp
// for what it does, nexthop.hpp for how servers are chosen, session.hpp for
// the SMTP conversation, docs/remote-delivery.md for the admin's view.
#include "lib/daemon/worker.hpp"
#include "lib/dns/resolver.hpp"
#include "lib/event/loop.hpp"
#include "lib/log/log.hpp"
#include "smtp-client/agent.hpp"
#include "smtp-client/server.hpp"
#include "smtp-client/settings.hpp"

using namespace tern;

int main(int argc, char** argv) {
    daemon::WorkerContext ctx = daemon::start_worker(argc, argv, "smtp-client");
    const config::Config& config = ctx.config;
    if (ctx.listeners.empty()) log::fatal("no listening socket passed (run me from master)");
    auto settings = smtpc::Settings::from(config);
    if (!settings) log::fatal("%s", settings.message().c_str());
    auto dns = dns::settings_from(config);
    if (!dns) log::fatal("%s", dns.message().c_str());

    auto policy = smtpc::Policy::open(config, settings->tls_level);
    if (!policy) log::fatal("%s", policy.message().c_str());

    event::Base base = event::make_base();
    smtpc::Agent agent(base.get(), std::move(*settings), std::move(*dns), std::move(*policy));
    smtpc::Server server(base.get(), std::move(ctx.listeners), agent);

    // Graceful stop: deliveries in progress get up to 10 s to finish and
    // answer; whatever is cut off is deferred by qmgr (at-least-once).
    int drain_ticks = 0;
    event::Watch drain = event::timer(base.get(), [&](short) {
        if (agent.active() == 0 || ++drain_ticks > 100) {
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
    daemon::notify_ready();
    return daemon::run_loop(base.get(), handlers);
}
