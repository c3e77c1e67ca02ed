// Writing a wake-up into the pickup FIFO (see wake.hpp).
#include "lib/maildrop/wake.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "lib/core/errno_text.hpp"
#include "lib/core/fd.hpp"

namespace tern::maildrop {

std::string pickup_fifo_path(const config::Config& config) {
    return config.get("queue_directory") + "/public/pickup";
}

Status write_wake(const std::string& fifo_path) {
    // O_NONBLOCK: open fails with ENXIO at once when nobody reads (tern is
    // stopped) instead of hanging the caller.
    Fd fd(::open(fifo_path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!fd) {
        if (errno == ENXIO) return make_error("open " + fifo_path + ": nobody reads it (tern is not running)");
        return errno_error("open " + fifo_path);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISFIFO(st.st_mode)) return make_error(fifo_path + " is not a FIFO");
    const char byte = 'W';
    for (;;) {
        ssize_t n = ::write(fd.get(), &byte, 1);
        if (n == 1) return {};
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return {};  // full: wake-ups are already pending
        return errno_error("write " + fifo_path);
    }
}

}  // namespace tern::maildrop
