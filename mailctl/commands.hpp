// mailctl's subcommands: one table, one file per topic.
//
// To add a subcommand: write mailctl/<topic>.cpp with a function
//   int cmd_<name>(Context& ctx, const std::vector<std::string>& args);
// declare it below, and add one line to the table in commands.cpp with its
// name, one-line summary and full usage text.  main.cpp handles the global
// options, `mailctl help [COMMAND]` and `COMMAND --help` for every entry.
//
// Exit codes (shared by every subcommand, listed in `mailctl --help`):
//   0 success, 1 failure (bad configuration, master refused, I/O error),
//   2 usage error, 3 tern is not running (status, reload).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lib/config/config.hpp"
#include "lib/config/services.hpp"
#include "lib/core/result.hpp"
#include "lib/ipc/message.hpp"

namespace tern::mailctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotRunning = 3;

struct Context {
    std::string config_dir;  // absolute: -c DIR, else $TERN_CONFIG_DIR, else /etc/tern
};

using CommandFunction = int (*)(Context& ctx, const std::vector<std::string>& args);

struct Command {
    std::string_view name;
    std::string_view summary;  // one line for `mailctl --help`
    std::string_view usage;    // full text for `mailctl help NAME` / `NAME --help`
    CommandFunction run;
};

const std::vector<Command>& commands();
const Command* find_command(std::string_view name);

// --- helpers for subcommands (common.cpp) ---

// True when args hold -h or --help (the caller then prints its usage).
bool wants_help(const std::vector<std::string>& args);
// Prints "mailctl NAME: message" and the command's usage to stderr; returns 2.
int usage_error(std::string_view command, const std::string& message);
// "mailctl: error: ..." on stderr.
void print_error(const std::string& message);

// tern.conf of ctx.config_dir; on error prints the file:line diagnostics.
Result<config::Config> load_config(const Context& ctx);
// tern.conf even when it has errors (the valid lines count), silently: to
// find master's control socket for status and stop while the files are
// being edited.
config::Config load_config_lenient(const Context& ctx);
// tern.conf and services.conf; on error prints the diagnostics.
Result<std::pair<config::Config, std::vector<config::ServiceSpec>>> load_all(const Context& ctx);

// The master control socket of a configuration: $run_directory/master.sock.
std::string control_socket_path(const config::Config& config);
// One request/reply with master.  Fails with "not running" when nothing
// listens on the control socket.
Result<ipc::Message> ask_master(const config::Config& config, const ipc::Message& request,
                                int timeout_ms = 10000);
// True when the error of ask_master means master is not running.
bool is_not_running(const Error& error);

// "45s", "12m", "3h05m", "2d04h"
std::string format_duration(long long seconds);

// --- the subcommands ---
int cmd_start(Context& ctx, const std::vector<std::string>& args);   // lifecycle.cpp
int cmd_stop(Context& ctx, const std::vector<std::string>& args);    // lifecycle.cpp
int cmd_reload(Context& ctx, const std::vector<std::string>& args);  // lifecycle.cpp
int cmd_status(Context& ctx, const std::vector<std::string>& args);  // status.cpp
int cmd_config(Context& ctx, const std::vector<std::string>& args);  // config.cpp
int cmd_queue(Context& ctx, const std::vector<std::string>& args);   // queue.cpp
int cmd_block(Context& ctx, const std::vector<std::string>& args);   // block.cpp
int cmd_user(Context& ctx, const std::vector<std::string>& args);    // user.cpp
int cmd_domain(Context& ctx, const std::vector<std::string>& args);  // domain.cpp
int cmd_auth(Context& ctx, const std::vector<std::string>& args);    // auth_test.cpp

}  // namespace tern::mailctl
