// A name a client or peer sent (a login, a user), made safe to show inside
// <...> on one log line: control bytes, bytes outside ASCII and the angle
// brackets become '?', and at most max_bytes of it are kept.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tern::log {

std::string loggable(std::string_view text, size_t max_bytes);

}  // namespace tern::log
