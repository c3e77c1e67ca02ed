// POP3 command lines (RFC 1939 3, RFC 2449, RFC 2595, RFC 5034): the
// keyword, its arguments, and the argument checks every command needs, kept
// apart from the session so that they can be unit-tested and fuzzed.
//
//   auto cmd = pop3::parse_command("TOP 3 10");
//   if (!cmd) send(pop3::err("", cmd.message()));        // "-ERR ..." text
//   else if (auto bad = pop3::check_arguments(*cmd)) ...  // wrong arity
//   auto msg = pop3::message_number(cmd->args[0]);       // 1-based, nullopt if bad
//
// RFC 1939 3: a keyword of three or four printable characters, arguments
// separated by single spaces (each up to 40 characters there, up to a
// 255-octet line with RFC 2449).  Clients in the
// field send several spaces or a trailing one, so runs of spaces are
// accepted as one separator.  PASS and AUTH keep the raw rest of the line
// as well (RFC 1939 7: a password may contain spaces).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::pop3 {

enum class Verb {
    User, Pass, Apop, Auth, Stat, List, Retr, Dele, Noop, Rset, Quit, Top, Uidl, Capa, Stls, Unknown,
};

// RFC 1939 3 allows 40 characters; RFC 2449 4 lifts that (a command line
// may have 255 octets), which long addresses in USER need.
inline constexpr size_t kMaxArgument = 253;
inline constexpr size_t kMaxArguments = 4;   // more is never valid for any command

struct Command {
    Verb verb = Verb::Unknown;
    std::string keyword;                 // upper-case, as sent (for logs and errors)
    std::vector<std::string_view> args;  // views into the parsed line
    std::string_view rest;               // everything after "KEYWORD " (PASS, AUTH)
};

// The upper-case keyword of a verb: "RETR".
std::string_view verb_name(Verb verb);

// Splits a command line (CRLF already removed).  Errors are texts for an
// "-ERR" reply: an empty line, a keyword that is not 3-4 letters, NUL or
// control bytes, too many or overlong arguments.  An unknown but well-formed
// keyword is not an error here (Verb::Unknown): the session answers it.
Result<Command> parse_command(std::string_view line);

// The argument count check of each verb (RFC 1939 5-7, RFC 2449 5, RFC 2595
// 4, RFC 5034 4): nullopt when fine, else the "-ERR" text naming the syntax.
std::optional<std::string> check_arguments(const Command& cmd);

// A message number (RFC 1939 5): decimal digits only, 1 .. 2^31-1.
std::optional<uint32_t> message_number(std::string_view arg);
// TOP's line count: decimal digits only, 0 .. 2^31-1.
std::optional<uint32_t> line_count(std::string_view arg);

}  // namespace tern::pop3
