// auth: the authentication daemon, the only tern process that reads
// password data.  Wiring only: worker start-up, settings, the Server on the
// sockets master passed.  See server.hpp for the protocol and logs,
// passdb.hpp for where passwords come from, docs/auth.md for running it.
#include <unistd.h>

#include "auth/server.hpp"
#include "auth/settings.hpp"
#include "lib/config/config.hpp"
#include "lib/daemon/worker.hpp"
#include "lib/event/loop.hpp"
#include "lib/log/log.hpp"

using namespace tern;

int main(int argc, char** argv) {
    daemon::WorkerContext ctx = daemon::start_worker(argc, argv, "auth");
    if (ctx.listeners.empty()) log::fatal("no listening socket passed (run me from master)");

    event::Base base = event::make_base();
    authd::Server server(base.get(), std::move(ctx.listeners), authd::Settings::from(ctx.config));

    daemon::LoopHandlers handlers;
    handlers.on_stop = [&] {
        server.close_listeners();
        event_base_loopexit(base.get(), nullptr);
    };
    // SIGHUP re-reads the users file now (it is also re-read when it
    // changes); other settings take effect when master restarts us.
    handlers.on_reload = [&] { server.reload_users(); };
    daemon::notify_ready();
    return daemon::run_loop(base.get(), handlers);
}
