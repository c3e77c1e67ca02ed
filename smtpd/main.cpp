// smtpd: the SMTP receiver (RFC 5321).  Wiring only: start-up as a tern
// worker (config, logging, listening sockets from master), the event loop
// with threads enabled for the queue's group commit, and the Server.
#include <chrono>

#include "lib/daemon/worker.hpp"
#include "lib/event/loop.hpp"
#include "lib/log/log.hpp"
#include "smtpd/server.hpp"

using namespace tern;

int main(int argc, char** argv) {
    daemon::WorkerContext ctx = daemon::start_worker(argc, argv, "smtpd");
    // The Committer's worker thread wakes the loop: threads before the base.
    event::enable_threads();
    event::Base base = event::make_base();
    auto server = smtpd::Server::create(base.get(), ctx.config);
    if (!server) log::fatal("%s", server.message().c_str());
    if (ctx.listeners.empty()) log::fatal("no listening sockets (run smtpd from master, or with LISTEN_FDS)");
    if (Status s = (*server)->listen(std::move(ctx.listeners)); !s) log::fatal("%s", s.message().c_str());

    // Graceful stop: refuse new connections, let sessions finish (each is
    // bounded by its timeouts), then leave the loop.
    smtpd::Server* srv = server->get();
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
