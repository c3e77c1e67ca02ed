// pop3d: the POP3 server (RFC 1939, with CAPA, STLS and SASL).  Wiring
// only: start-up as a tern worker (config, logging, listening sockets from
// master), the event loop, and the Server.
#include "lib/daemon/serve_clients.hpp"
#include "lib/daemon/worker.hpp"
#include "lib/event/loop.hpp"
#include "lib/usersession/backend_main.hpp"
#include "pop3d/server.hpp"

using namespace tern;

int main(int argc, char** argv) {
    daemon::WorkerContext ctx = daemon::start_worker(argc, argv, "pop3d");
    event::Base base = event::make_base();
    // A system user's session, started by user-session (system_user.cpp).
    if (usersession::is_backend(ctx)) return usersession::run_backend<pop3d::Server>(ctx, base.get());
    // Graceful stop: refuse new connections and let sessions finish (each
    // is bounded by pop3d_timeout).  A session cut off by the stop applies
    // no deletions: RFC 1939 6 only updates after QUIT.
    return daemon::serve_clients<pop3d::Server>(ctx, base.get(), "pop3d", daemon::StopSessions::Drain);
}
