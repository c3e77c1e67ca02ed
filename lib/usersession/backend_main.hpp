// The main loop of a backend process: imapd or pop3d started by
// user-session under a system user's uid ("backend" first among its
// arguments, backend_args.hpp), serving one session on the client socket
// passed as the one listening fd.  The process ends with the session, or
// on SIGTERM.
//
// Server needs: static create_backend(event_base*, const config::Config&)
// giving Result<std::unique_ptr<Server>>, and serve_backend(Fd, args).
#pragma once

#include <utility>

#include "lib/daemon/worker.hpp"
#include "lib/event/loop.hpp"
#include "lib/log/log.hpp"

namespace tern::usersession {

inline bool is_backend(const daemon::WorkerContext& ctx) { return !ctx.args.empty() && ctx.args[0] == "backend"; }

template <class Server>
int run_backend(daemon::WorkerContext& ctx, event_base* base) {
    auto backend = Server::create_backend(base, ctx.config);
    if (!backend) log::fatal("%s", backend.message().c_str());
    if (ctx.listeners.size() != 1) log::fatal("backend: expected the client socket as the one passed fd");
    if (Status s = (*backend)->serve_backend(std::move(ctx.listeners[0]), ctx.args); !s)
        log::fatal("%s", s.message().c_str());
    daemon::LoopHandlers handlers;
    handlers.on_stop = [&] { event_base_loopexit(base, nullptr); };
    int rc = daemon::run_loop(base, std::move(handlers));
    backend->reset();
    return rc;
}

}  // namespace tern::usersession
