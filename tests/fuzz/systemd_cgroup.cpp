// Fuzz target: the /proc/PID/cgroup parser mailctl uses to tell whether
// systemd manages master (lib/daemon/systemd).  Whatever the text, the
// answer is "" or one path component that ends in ".service" and occurs in
// the input.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/daemon/systemd.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    std::string unit = tern::daemon::unit_from_cgroup(in);
    if (unit.empty()) return 0;
    if (unit.size() <= 8 || unit.compare(unit.size() - 8, 8, ".service") != 0) std::abort();
    if (unit.find('/') != std::string::npos || unit.find('\n') != std::string::npos) std::abort();
    if (in.find(unit) == std::string_view::npos) std::abort();
    return 0;
}
