// imapd: the IMAP server (RFC 9051 IMAP4rev2 and RFC 3501 IMAP4rev1).
// Wiring only: start-up as a tern worker, the event loop and the Server.
#include <chrono>

#include "imapd/server.hpp"
#include "lib/daemon/worker.hpp"
#include "lib/event/loop.hpp"
#include "lib/log/log.hpp"

using namespace tern;

int main(int argc, char** argv) {
    daemon::WorkerContext ctx = daemon::start_worker(argc, argv, "imapd");
    event::Base base = event::make_base();
    if (!ctx.args.empty() && ctx.args[0] == "backend") {
        // A system user's session, started by user-session (system_user.cpp).
        auto backend = imapd::Server::create_backend(base.get(), ctx.config);
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
    auto server = imapd::Server::create(base.get(), ctx.config);
    if (!server) log::fatal("%s", server.message().c_str());
    if (ctx.listeners.empty()) log::fatal("no listening sockets (run imapd from master, or with LISTEN_FDS)");
    if (Status s = (*server)->listen(std::move(ctx.listeners)); !s) log::fatal("%s", s.message().c_str());

    // Graceful stop: no new connections; sessions get a BYE (IMAP clients
    // stay connected for hours, waiting for them is pointless).
    imapd::Server* srv = server->get();
    daemon::LoopHandlers handlers;
    handlers.on_stop = [&] {
        srv->stop_accepting();
        server->reset();
        event_base_loopexit(base.get(), nullptr);
    };
    daemon::notify_ready();
    int rc = daemon::run_loop(base.get(), std::move(handlers));
    server->reset();
    return rc;
}
