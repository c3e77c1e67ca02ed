// Message content decoding for DATA (RFC 5321 4.1.1.4, 4.5.2) and BDAT
// (RFC 3030), producing what the queue stores: LF line endings, dot-unstuffed.
//
// SMTP smuggling defence: the end of data is recognised only as
// CR LF "." CR LF.  A bare LF or a bare CR anywhere in the content puts the
// decoder in an error state: the message is refused as a whole (smtpd answers
// 550 5.5.2 and queues nothing).  The decoder keeps consuming until the real
// terminator so that the session stays in step with the client — anything a
// smuggler hid after "<LF>.<LF>" is swallowed as part of the refused message,
// never executed as commands.
//
// Limits: the decoded size (after dot-unstuffing, LF endings) is counted
// against max_size; a line longer than max_line bytes (without its CRLF) is
// an error.  After any error output stops, but counting and the search for
// the terminator go on.  Output is appended to a caller-owned buffer, which
// the caller drains to the body file whenever it likes; nothing here grows
// with the message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tern::smtp {

enum class DataError {
    None,
    BareLf,       // LF not preceded by CR
    BareCr,       // CR not followed by LF
    LineTooLong,  // a line longer than max_line
    TooBig,       // decoded size over max_size
};
std::string_view data_error_text(DataError error);  // "bare <LF> received" etc.

struct DataLimits {
    uint64_t max_size = 0;  // 0 = unlimited
    size_t max_line = 0;    // 0 = unlimited
};

// DATA: dot-stuffed CRLF lines up to CRLF.CRLF.
class DataDecoder {
public:
    explicit DataDecoder(DataLimits limits = {}) : limits_(limits) {}

    // Consumes input; decoded bytes are appended to `out`.  Returns the
    // number of bytes consumed: all of them, or fewer when the terminator was
    // found (the rest belongs to the next command, e.g. a pipelined QUIT).
    size_t feed(std::string_view in, std::string& out);

    bool done() const { return state_ == State::Done; }
    DataError error() const { return error_; }
    uint64_t size() const { return size_; }  // decoded bytes, counted even after an error

private:
    enum class State { LineStart, Dot, InLine, Cr, DotCr, Done };
    void fail(DataError e) {
        if (error_ == DataError::None) error_ = e;
    }
    void emit(std::string& out, std::string_view bytes);
    void emit_char(std::string& out, char c);

    DataLimits limits_;
    State state_ = State::LineStart;
    DataError error_ = DataError::None;
    uint64_t size_ = 0;
    size_t line_ = 0;
};

// BDAT: raw chunks; CRLF becomes LF; bare CR or LF is an error (same policy
// as DATA, so a message cannot differ depending on how it was sent).
class ChunkDecoder {
public:
    explicit ChunkDecoder(DataLimits limits = {}) : limits_(limits) {}

    void feed(std::string_view in, std::string& out);
    // After the LAST chunk: a CR at the very end is a bare CR.
    void finish();

    DataError error() const { return error_; }
    uint64_t size() const { return size_; }

private:
    void fail(DataError e) {
        if (error_ == DataError::None) error_ = e;
    }
    DataLimits limits_;
    bool pending_cr_ = false;
    DataError error_ = DataError::None;
    uint64_t size_ = 0;
    size_t line_ = 0;
};

}  // namespace tern::smtp
