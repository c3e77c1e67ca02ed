// Buffered line input (see input.hpp).
#include "sendmail/input.hpp"

#include <unistd.h>

#include <cerrno>

#include "lib/core/errno_text.hpp"

namespace tern::sendmail {

Result<std::string> LineReader::next(bool* eof, bool* had_newline) {
    *eof = false;
    if (had_newline) *had_newline = true;
    for (;;) {
        size_t nl = buffer_.find('\n', pos_);
        if (nl != std::string::npos) {
            std::string line = buffer_.substr(pos_, nl - pos_);
            pos_ = nl + 1;
            if (!line.empty() && line.back() == '\r') line.pop_back();
            return line;
        }
        if (eof_) {
            std::string line = buffer_.substr(pos_);
            buffer_.clear();
            pos_ = 0;
            if (line.empty()) {
                *eof = true;
                return line;
            }
            if (had_newline) *had_newline = false;
            if (line.back() == '\r') line.pop_back();
            return line;
        }
        if (buffer_.size() - pos_ >= kMaxLine) {
            // A very long line is handed over in pieces rather than held whole.
            std::string piece = buffer_.substr(pos_);
            buffer_.clear();
            pos_ = 0;
            if (had_newline) *had_newline = false;
            return piece;
        }
        if (pos_ > 0) {
            buffer_.erase(0, pos_);
            pos_ = 0;
        }
        char chunk[65536];
        ssize_t n = ::read(fd_, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("read standard input");
        }
        if (n == 0) eof_ = true;
        else buffer_.append(chunk, static_cast<size_t>(n));
    }
}

}  // namespace tern::sendmail
