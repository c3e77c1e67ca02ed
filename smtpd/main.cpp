// smtpd: the SMTP receiver (RFC 5321).  Wiring only: start-up as a tern
// worker (config, logging, listening sockets from master), the event loop
// with threads enabled for the queue's group commit, and the Server.
#include "lib/daemon/serve_clients.hpp"
#include "lib/daemon/worker.hpp"
#include "lib/event/loop.hpp"
#include "smtpd/server.hpp"

using namespace tern;

int main(int argc, char** argv) {
    daemon::WorkerContext ctx = daemon::start_worker(argc, argv, "smtpd");
    // The Committer's worker thread wakes the loop: threads before the base.
    event::enable_threads();
    event::Base base = event::make_base();
    // Graceful stop: refuse new connections, let sessions finish (each is
    // bounded by its timeouts), then leave the loop.
    return daemon::serve_clients<smtpd::Server>(ctx, base.get(), "smtpd", daemon::StopSessions::Drain);
}
