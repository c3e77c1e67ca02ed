// Lookup tables compiled by master before workers start.
//
// Workers open the compiled form of the aliases, virtual users, transport
// and TLS policy files (lib/tables) and rebuild it themselves only when they
// may write beside the source.  On an installed system the sources live in
// /etc/tern, writable by root alone, so master -- still root -- compiles
// every stale table at start and on reload, as an administrator would with
// newaliases.  A table that does not compile is logged; the workers then
// refuse the stale table (temporary failures), they never silently use it.
#pragma once

#include "lib/config/config.hpp"

namespace tern::master {

void compile_stale_tables(const config::Config& config);

}  // namespace tern::master
