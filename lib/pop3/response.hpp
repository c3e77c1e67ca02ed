// POP3 responses (RFC 1939 3, RFC 2449 8): status lines with optional
// response codes, and the multi-line encoder that turns a stored message
// (LF line ends) into what RETR and TOP send: CRLF line ends, lines that
// start with "." dot-stuffed, the ".\r\n" terminator.  The encoder works on
// pieces, so a large message streams through a small buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tern::pop3 {

inline constexpr size_t kMaxResponseLine = 512;  // RFC 2449 4, CRLF included

// "+OK text\r\n".  Control bytes in text become '?'; the line is cut to
// kMaxResponseLine.  An empty text gives "+OK\r\n".
std::string ok(std::string_view text);
// "-ERR [CODE] text\r\n" (RFC 2449 8: IN-USE, LOGIN-DELAY, SYS/TEMP,
// SYS/PERM, AUTH); code "" leaves the brackets out.
std::string err(std::string_view code, std::string_view text);

// RFC 1939 3 multi-line body.  Feed the stored bytes in any pieces.
class MultilineEncoder {
public:
    // body_lines: TOP's count of body lines after the header (RFC 1939 7);
    // nullopt sends everything (RETR).
    explicit MultilineEncoder(std::optional<uint32_t> body_lines = std::nullopt);

    // Appends the encoded form of `piece` to out.  Returns false once TOP's
    // limit is reached: the rest of the message is not wanted.
    bool feed(std::string_view piece, std::string& out);
    // Ends an unterminated last line with CRLF and appends ".\r\n".
    void finish(std::string& out);
    bool done() const { return done_; }

private:
    void end_line(std::string& out);
    std::optional<uint32_t> limit_;
    uint32_t body_lines_ = 0;
    bool in_header_ = true;
    bool at_line_start_ = true;
    bool line_has_content_ = false;
    bool pending_cr_ = false;
    bool done_ = false;
};

}  // namespace tern::pop3
