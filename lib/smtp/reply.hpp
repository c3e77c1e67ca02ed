// SMTP replies (RFC 5321 4.2) with enhanced status codes (RFC 3463, RFC 2034).
//
// format_reply(250, "2.0.0", "Ok") → "250 2.0.0 Ok\r\n".  Multi-line replies
// use "250-" on every line but the last.  Text is sanitised: CR, LF and other
// control characters from untrusted sources (an address echoed back) become
// '?' so a reply can never be split.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tern::smtp {

std::string format_reply(int code, std::string_view enhanced, std::string_view text);
// Lines without code; enhanced may be "" (EHLO replies carry none).
std::string format_multiline(int code, std::string_view enhanced, const std::vector<std::string>& lines);

// Parsed reply line from a server (used by the SMTP client and tests).
struct ReplyLine {
    int code = 0;
    bool last = true;       // "250 " vs "250-"
    std::string_view text;  // after "250 " / "250-"
};
bool parse_reply_line(std::string_view line, ReplyLine& out);

}  // namespace tern::smtp
