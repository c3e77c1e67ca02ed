// imapd: the IMAP server (RFC 9051 IMAP4rev2 and RFC 3501 IMAP4rev1).
// Wiring only: start-up as a tern worker, the event loop and the Server.
#include "imapd/server.hpp"
#include "lib/daemon/serve_clients.hpp"
#include "lib/daemon/worker.hpp"
#include "lib/event/loop.hpp"
#include "lib/usersession/backend_main.hpp"

using namespace tern;

int main(int argc, char** argv) {
    daemon::WorkerContext ctx = daemon::start_worker(argc, argv, "imapd");
    event::Base base = event::make_base();
    // A system user's session, started by user-session (system_user.cpp).
    if (usersession::is_backend(ctx)) return usersession::run_backend<imapd::Server>(ctx, base.get());
    // Graceful stop: no new connections; sessions get a BYE (IMAP clients
    // stay connected for hours, waiting for them is pointless).
    return daemon::serve_clients<imapd::Server>(ctx, base.get(), "imapd", daemon::StopSessions::Now);
}
