// services.conf: which worker processes master runs, like Postfix's master.cf.
//
// One service per line, fields separated by white space, `#` comments,
// indented continuation lines:
//
//   # name      type  listen                       user  procs  command [args]
//   smtp        inet  127.0.0.1:2525               -     2      smtpd
//   submission  inet  127.0.0.1:2587,[::1]:2587    -     1      smtpd -o smtpd_mode=submission
//   qmgr        unix  $run_directory/qmgr.sock     -     1      qmgr
//   cleanup     none  -                            -     1      some-daemon
//
// type: inet (TCP), unix (stream socket), none (no listener).  listen: a
// comma-separated list; `-` for none.  user: `-` means the default
// (`default_user` from tern.conf), a name otherwise.  procs: `-` means half
// the cores, rounded up (services.cpp, default_process_count).  `$key` in listen and args expands from tern.conf.
#pragma once

#include <string>
#include <vector>

#include "lib/config/config.hpp"
#include "lib/core/result.hpp"

namespace tern::config {

enum class ListenType { Inet, Unix, None };

struct ListenAddress {
    std::string host;  // "127.0.0.1", "::1", "" for any (inet)
    int port = 0;      // inet
    std::string path;  // unix
    std::string to_string() const;  // "127.0.0.1:2525", "[::1]:25", "/run/tern/qmgr.sock"
    bool operator==(const ListenAddress&) const = default;
};

struct ServiceSpec {
    std::string name;
    ListenType type = ListenType::None;
    std::vector<ListenAddress> listen;
    std::string user;           // resolved: never "-"
    int process_count = 1;      // resolved: never "-"
    std::string command;        // program name, looked up in daemon_directory
    std::vector<std::string> args;
    int line = 0;
    std::string source_line;    // the line as written (joined), to detect changes on reload
    bool operator==(const ServiceSpec&) const = default;
};

// Reads DIR/services.conf.  Errors name file:line (duplicate names, bad
// type, bad address, bad count).
Result<std::vector<ServiceSpec>> load_services(const Config& config);
Result<std::vector<ServiceSpec>> parse_services(std::string_view text, const std::string& filename,
                                                const Config& config);

}  // namespace tern::config
