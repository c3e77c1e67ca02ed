// A queued message on its way out over SMTP: the queue file holds LF line
// endings and no dot-stuffing (DESIGN.md), the wire wants CRLF, every line
// that starts with "." doubled (RFC 5321 4.5.2) and ".\r\n" at the end.
//
// When the next server lacks 8BITMIME (RFC 6152) and the message is 8-bit,
// downgrade_8bit() re-encodes it as Postfix does: every leaf MIME part that
// holds 8-bit bytes under a 7bit/8bit (or no) Content-Transfer-Encoding is
// written as quoted-printable (RFC 2045 6.7) with its header changed,
// multipart bodies and message/rfc822 parts are walked recursively (bounded
// depth), everything else is left byte for byte.
#pragma once

#include <string>
#include <string_view>

namespace tern::smtp {

// Streams a body in chunks: feed() as often as needed, then finish().
class DataEncoder {
public:
    std::string feed(std::string_view chunk);
    std::string finish();  // ends an unterminated last line, then ".\r\n"

private:
    bool at_line_start_ = true;
};

bool has_8bit(std::string_view text);

// The whole message (headers + body, LF line endings) made 7-bit where MIME
// allows it.
std::string downgrade_8bit(std::string_view message);

// RFC 2045 6.7 quoted-printable of LF-separated text (LF line endings out).
std::string quoted_printable(std::string_view text);

}  // namespace tern::smtp
