// pop3d: the POP3 server (RFC 1939, with CAPA, STLS and SASL).  Wiring
// only: start-up as a tern worker (config, logging, listening sockets from
// master), the event loop, and the Server.
#include <chrono>

#include "lib/daemon/worker.hpp"
#include "lib/event/loop.hpp"
#include "lib/log/log.hpp"
#include "pop3d/server.hpp"

using namespace tern;

int main(int argc, char** argv) {
    daemon::WorkerContext ctx = daemon::start_worker(argc, argv, "pop3d");
    event::Base base = event::make_base();
    if (!ctx.args.empty() && ctx.args[0] == "backend") {
        // A system user's session, started by user-session (system_user.cpp).
        auto backend = pop3d::Server::create_backend(base.get(), ctx.config);
        if (!backend) log::fatal("%s", backend.message().c_str());
        if (ctx.listeners.size() != 1) log::fatal("backend: expected the client socket as the one passed fd");
        if (Status s = (*backend)->serve_backend(std::move(ctx.listeners[0]), ctx.args); !s)
            log::fatal("%s", s.message().c_str());
        daemon::LoopHandlers handlers;
        handlers.on_stop = [&] { event_base_loopexit(base.get(), nullptr); };
        int rc = daemon::run_loop(base.get(), std::move(handlers));
        backend->reset();
        return rc;
    }
    auto server = pop3d::Server::create(base.get(), ctx.config);
    if (!server) log::fatal("%s", server.message().c_str());
    if (ctx.listeners.empty()) log::fatal("no listening sockets (run pop3d from master, or with LISTEN_FDS)");
    if (Status s = (*server)->listen(std::move(ctx.listeners)); !s) log::fatal("%s", s.message().c_str());

    // Graceful stop: refuse new connections and let sessions finish (each
    // is bounded by pop3d_timeout).  A session cut off by the stop applies
    // no deletions: RFC 1939 6 only updates after QUIT.
    pop3d::Server* srv = server->get();
    event::Watch drain = event::timer(base.get(), [](short) {});
    drain = event::timer(base.get(), [&](short) {
        if (srv->session_count() == 0) event_base_loopexit(base.get(), nullptr);
        else drain.add(std::chrono::milliseconds(100));
    });
    daemon::LoopHandlers handlers;
    handlers.on_stop = [&] {
        srv->stop_accepting();
        drain.add(std::chrono::milliseconds(1));
    };
    daemon::notify_ready();
    int rc = daemon::run_loop(base.get(), std::move(handlers));
    server->reset();
    return rc;
}
