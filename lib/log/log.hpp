// Logging in Postfix's line format, to syslog (default), a file, or stderr.
//
//   tern/smtpd[1234]: 0A1B2C3D4E5F: client=localhost[127.0.0.1]
//
// init() picks the target from the `log_target` key: "syslog", "stderr", or
// a file path (lines then carry a timestamp and host name, like syslog).
// One call is one line; embedded newlines are replaced so a log line can never
// be split or forged by input.
#pragma once

#include <string>
#include <string_view>

namespace tern::log {

enum class Level { Debug, Info, Warning, Error, Fatal };

// program: the service's command name ("smtpd"); tag becomes "tern/smtpd".
void init(std::string_view program, std::string_view target);
void set_debug(bool on);

void write(Level level, std::string_view message);

void debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void warning(const char* fmt, ...) __attribute__((format(printf, 1, 2)));  // "warning: ..."
void error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));    // "error: ..."
[[noreturn]] void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));  // logs, exits 1

}  // namespace tern::log
