// The main loop of a daemon that serves clients on the listening sockets
// master passed (smtpd, imapd, pop3d): create the daemon's Server, listen,
// tell master it is ready, run until SIGTERM, then stop the way the
// protocol wants.
//
// Server needs: static create(event_base*, const config::Config&) giving
// Result<std::unique_ptr<Server>>, listen(std::vector<Fd>), stop_accepting()
// and session_count().  Start-up errors are fatal (logged, exit 1):
//   no listening sockets (run imapd from master, or with LISTEN_FDS)
#pragma once

#include <chrono>
#include <string>

#include "lib/daemon/worker.hpp"
#include "lib/event/loop.hpp"
#include "lib/log/log.hpp"

namespace tern::daemon {

enum class StopSessions {
    Now,    // end them at once, with the Server
    Drain,  // no new ones; the loop ends when the last one has finished
};

template <class Server>
int serve_clients(WorkerContext& ctx, event_base* base, const char* program, StopSessions stop) {
    auto server = Server::create(base, ctx.config);
    if (!server) log::fatal("%s", server.message().c_str());
    if (ctx.listeners.empty()) log::fatal("no listening sockets (run %s from master, or with LISTEN_FDS)", program);
    if (Status s = (*server)->listen(std::move(ctx.listeners)); !s) log::fatal("%s", s.message().c_str());

    Server* srv = server->get();
    event::Watch drain = event::timer(base, [](short) {});
    drain = event::timer(base, [&](short) {
        if (srv->session_count() == 0) event_base_loopexit(base, nullptr);
        else drain.add(std::chrono::milliseconds(100));
    });
    LoopHandlers handlers;
    handlers.on_stop = [&] {
        srv->stop_accepting();
        if (stop == StopSessions::Drain) {
            drain.add(std::chrono::milliseconds(1));
            return;
        }
        server->reset();
        event_base_loopexit(base, nullptr);
    };
    notify_ready();
    int rc = run_loop(base, std::move(handlers));
    server->reset();
    return rc;
}

}  // namespace tern::daemon
