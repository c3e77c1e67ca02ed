// user-session: the small root-run service that starts, for each system
// user's IMAP or POP3 login, a process running as that user (see
// server.hpp for the checks, backend.hpp for the drop).  Wiring only.
//
// Why a service of its own and not part of auth: auth runs as tern-auth
// and must stay unprivileged (it parses passwords from the network); this
// one must be root to change uid, so it does nothing else, parses almost
// nothing, and trusts only the auth daemon's word about whom to become.
#include <unistd.h>

#include "lib/daemon/worker.hpp"
#include "lib/event/loop.hpp"
#include "lib/log/log.hpp"
#include "user-session/server.hpp"

using namespace tern;

int main(int argc, char** argv) {
    daemon::WorkerContext ctx = daemon::start_worker(argc, argv, "user-session");
    if (ctx.listeners.empty()) log::fatal("no listening socket passed (run me from master)");
    if (::geteuid() != 0) log::warning("not running as root: backends cannot switch to system users");

    event::Base base = event::make_base();
    usersession::Server server(base.get(), std::move(ctx.listeners), usersession::Settings::from(ctx.config));

    // Stopping leaves running backends alone: each serves a live client
    // and ends with it, like an sshd session.
    daemon::LoopHandlers handlers;
    handlers.on_stop = [&] {
        server.close_listeners();
        event_base_loopexit(base.get(), nullptr);
    };
    daemon::notify_ready();
    return daemon::run_loop(base.get(), handlers);
}
