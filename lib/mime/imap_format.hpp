// IMAP renderings of a parsed message (RFC 9051 7.5.2 / RFC 3501 7.4.2):
// ENVELOPE, BODY and BODYSTRUCTURE as the exact strings a FETCH response
// carries, ready to cache.  Strings go out as quoted strings when they can,
// else as literals ({n} CRLF bytes): 8-bit bytes, CR, LF, NUL.
#pragma once

#include <string>
#include <string_view>

#include "lib/mime/message.hpp"

namespace tern::mime {

// ENVELOPE of the message whose header starts at part.header_begin.
std::string envelope(const Part& message, std::string_view data);

// BODYSTRUCTURE (extensible = true, with extension data) or BODY.
std::string bodystructure(const Part& message, std::string_view data, bool extensible);

// IMAP string / nstring rendering (quoted or literal; empty view as "").
void append_string(std::string& out, std::string_view s);
void append_nstring(std::string& out, std::string_view s);  // empty → NIL

}  // namespace tern::mime
