// Test-only fault injection: see fault.hpp.
#include "lib/sys/fault.hpp"

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "lib/log/log.hpp"

namespace tern::sys {

void fault_point(const char* name) {
    const char* path = std::getenv((std::string("TERN_FAULT_") + name).c_str());
    if (!path || !*path) return;
    // unlink succeeds for exactly one process: the crash happens once.
    if (::unlink(path) != 0) return;
    log::warning("fault injection: exiting at %s", name);
    _exit(kFaultExitStatus);
}

}  // namespace tern::sys
