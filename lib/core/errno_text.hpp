// Small helpers to turn errno into readable Error values.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

#include "lib/core/result.hpp"

namespace tern {

// "open /var/spool/tern/x: Permission denied"
inline Error errno_error(const std::string& what, int err = errno) {
    return Error{what + ": " + std::strerror(err)};
}

}  // namespace tern
