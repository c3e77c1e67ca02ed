// Line input from a file descriptor (sendmail's standard input), with
// CRLF turned into LF, for both the plain message mode and -bs.
#pragma once

#include <string>

#include "lib/core/result.hpp"

namespace tern::sendmail {

class LineReader {
public:
    static constexpr size_t kMaxLine = 1 << 20;
    explicit LineReader(int fd) : fd_(fd) {}
    // The next line without its line ending.  *eof is set (and the line is
    // empty) at the end of input; a last line without a newline is returned
    // with *had_newline false.  Fails on a read error.
    Result<std::string> next(bool* eof, bool* had_newline = nullptr);

private:
    int fd_;
    std::string buffer_;
    size_t pos_ = 0;
    bool eof_ = false;
};

}  // namespace tern::sendmail
