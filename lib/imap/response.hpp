// Writing IMAP responses (RFC 9051 7): strings as quoted strings where the
// grammar allows and literals where it does not (CR, LF, NUL, long or 8-bit
// text for a client that has not enabled UTF-8), astrings, nstrings, status
// lines with response codes, and literal8 for BINARY.  Everything appends to
// a std::string the session then writes in one piece.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tern::imap {

// string: quoted when it can be, else a literal.  utf8: the client accepts
// 8-bit UTF-8 in quoted strings (IMAP4rev2, UTF8=ACCEPT); otherwise 8-bit
// text goes out as a literal.
void append_string(std::string& out, std::string_view s, bool utf8 = false);
// nstring: NIL when absent.
void append_nstring(std::string& out, const std::optional<std::string_view>& s, bool utf8 = false);
// astring: a bare atom when every byte is an ASTRING-CHAR, else a string.
void append_astring(std::string& out, std::string_view s, bool utf8 = false);
// Always a literal ({n} CRLF data), or literal8 (~{n}) when binary is set.
void append_literal(std::string& out, std::string_view s, bool binary = false);

// "TAG OK [CODE] text\r\n"; code without brackets, may be empty.  The text
// is made safe for one line (CR, LF and NUL become spaces).
std::string status_line(std::string_view tag, std::string_view status, std::string_view code, std::string_view text);

}  // namespace tern::imap
