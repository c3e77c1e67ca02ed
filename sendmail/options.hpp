// sendmail(1)'s command line, as the traditional sendmail and Postfix's
// sendmail accept it, so cron, mail(1), PHP's mail() and git send-email
// work unchanged:
//
//   sendmail [-t] [-i|-oi] [-f sender] [-F fullname] [-bm|-bs|-bp|-bi] [-q]
//            [-v] [-c dir] [-oXXX] [-N dsn] [-R ret] [-V envid] [--] [rcpt...]
//
// The program name selects a mode as well: "mailq" is -bp, "newaliases"
// is -bi.  Options that only make sense to sendmail 8 (-oXXX other than
// -oi, -B, -h, -n, -U, -G, -L, -X, -e*, -m, -A*) are accepted and
// ignored, as Postfix does, because callers pass them blindly.  The DSN
// options -N (never | success,failure,delay), -R (full | hdrs) and -V
// (envid) travel with the message (RFC 3461).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::sendmail {

enum class Mode { Deliver, Smtp, ListQueue, NewAliases, Flush };

struct Options {
    Mode mode = Mode::Deliver;
    bool extract_recipients = false;  // -t
    bool ignore_dots = false;         // -i, -oi: a lone "." does not end the message
    std::optional<std::string> sender;  // -f / -r ("" = null sender)
    std::optional<std::string> fullname;  // -F
    std::string config_dir;           // -c / -C
    bool verbose = false;             // -v
    std::vector<std::string> recipients;
    uint8_t notify = 0;      // -N: queue::Notify bits, 0 = not given
    std::string ret;         // -R full|hdrs → "FULL"/"HDRS"
    std::string envid;       // -V
};

// argv[0] decides the default mode.  Errors are usage messages.
Result<Options> parse_options(int argc, char** argv);
std::string usage_text();

}  // namespace tern::sendmail
