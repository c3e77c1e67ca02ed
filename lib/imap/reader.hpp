// Assembles IMAP commands from the byte stream: a command is a line, or
// several lines joined by literals ({n} CRLF <n bytes>).  The reader decides
// about every literal *before* the client sends it (RFC 9051 4.3, RFC 7888):
//
//   - a synchronizing literal {n}: within the limits -> Continue (the session
//     answers "+ ..."), over them -> TooBig (the session answers the tag with
//     NO/BAD [TOOBIG] and never sends "+", so the client sends nothing);
//   - a non-synchronizing literal {n+}: accepted up to 4096 bytes (LITERAL-)
//     when within the limits; larger ones are already on their way, cannot
//     be skipped safely, and end the connection (Fatal).
//
// Limits: one line (without literals) is at most line_max bytes; a command
// other than APPEND is at most command_max bytes including its literals;
// APPEND's literals are each at most append_max (APPENDLIMIT) and the whole
// command at most append_total_max.  A line that is too long is skipped up
// to its end (LineTooLong once); when that skipped line announced a literal
// the stream cannot be resynchronised and the result is Fatal.
//
// The reader works on contiguous input (feed() reports how much it
// consumed), so it is independent of libevent and fuzzable.  Between
// commands the session may ask for one raw line instead (the SASL exchange
// of AUTHENTICATE, IDLE's DONE): expect_raw_line().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tern::imap {

struct ReaderLimits {
    size_t line_max = 8192;
    size_t command_max = 65536;
    uint64_t append_max = 50 * 1024 * 1024;
    uint64_t append_total_max = 100 * 1024 * 1024;
    size_t nonsync_max = 4096;  // LITERAL-
};

class CommandReader {
public:
    enum class Event {
        NeedMore,     // everything offered was consumed, no command yet
        Command,      // command() holds a complete command (no final CRLF)
        RawLine,      // after expect_raw_line(): command() holds the line
        Continue,     // a synchronizing literal is accepted: send "+ ..."
        TooBig,       // a synchronizing literal is refused: answer tag(), command dropped
        LineTooLong,  // a line over line_max is being skipped: answer tag() with BAD
        Fatal,        // cannot resynchronise (error() says why): BYE and close
    };

    explicit CommandReader(ReaderLimits limits) : limits_(limits) {}

    // Consumes a prefix of `input` and reports what happened.  After an event
    // other than NeedMore, call feed() again with the rest of the input.
    Event feed(std::string_view input, size_t& consumed);

    // The assembled command (after Command/RawLine); valid until the next feed.
    const std::string& command() const { return command_; }
    // The tag of the command being read or just refused ("*" when unknown),
    // and whether the refused command was an APPEND (NO [TOOBIG] vs BAD).
    const std::string& tag() const { return tag_; }
    bool is_append() const { return append_; }
    uint64_t refused_size() const { return refused_size_; }
    const std::string& error() const { return error_; }

    // The next line is taken as it is, without literal processing.
    void expect_raw_line() { raw_line_ = true; }
    // Bytes the reader wants in one piece: a line up to its limit, or the
    // rest of the literal being read.
    size_t wanted() const;
    // Whether a command is partly read (for timeouts and idle memory).
    bool mid_command() const { return !command_.empty() || literal_left_ > 0 || skipping_; }
    // Releases buffer memory between commands (an idle connection keeps none).
    void shrink() { if (!mid_command()) std::string().swap(command_); }

private:
    Event on_line(std::string_view line);
    void reset_command();

    ReaderLimits limits_;
    std::string command_;
    std::string tag_ = "*";
    std::string error_;
    std::string skip_tail_;  // the end of a line being skipped
    uint64_t literal_left_ = 0;
    uint64_t refused_size_ = 0;
    bool append_ = false;
    bool first_line_ = true;
    bool skipping_ = false;
    bool raw_line_ = false;
    bool delivered_ = false;  // command_ was handed out; clear it on the next feed
};

// Parses a literal announcement at the end of a line: "{123}", "{123+}",
// "~{123}" (literal8).  Returns false when the line does not end with one.
bool literal_suffix(std::string_view line, uint64_t& size, bool& non_sync);

}  // namespace tern::imap
