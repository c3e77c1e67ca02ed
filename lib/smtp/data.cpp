// DATA / BDAT content decoding (see data.hpp).  A byte-level state machine
// with a fast path that copies whole line runs, so a large message costs one
// scan and one copy into the caller's buffer.
#include "lib/smtp/data.hpp"

#include <cstring>

namespace tern::smtp {

std::string_view data_error_text(DataError error) {
    switch (error) {
    case DataError::None: return "";
    case DataError::BareLf: return "bare <LF> received";
    case DataError::BareCr: return "bare <CR> received";
    case DataError::LineTooLong: return "message line too long";
    case DataError::TooBig: return "message file too big";
    }
    return "";
}

namespace {

// Appends bytes up to the size limit; output then stops at the same byte
// however the input was split, which keeps the decoders deterministic.
void append_limited(std::string& out, std::string_view bytes, uint64_t& size, uint64_t max_size, bool& over) {
    uint64_t before = size;
    size += bytes.size();
    if (max_size && size > max_size) {
        over = true;
        bytes = bytes.substr(0, before < max_size ? max_size - before : 0);
    }
    out.append(bytes);
}

}  // namespace

void DataDecoder::emit(std::string& out, std::string_view bytes) {
    if (error_ != DataError::None) {
        size_ += bytes.size();
        return;
    }
    bool over = false;
    append_limited(out, bytes, size_, limits_.max_size, over);
    if (over) fail(DataError::TooBig);
}

void DataDecoder::emit_char(std::string& out, char c) { emit(out, std::string_view(&c, 1)); }

size_t DataDecoder::feed(std::string_view in, std::string& out) {
    size_t i = 0;
    const size_t n = in.size();
    while (i < n && state_ != State::Done) {
        char c = in[i];
        switch (state_) {
        case State::LineStart:
            line_ = 0;
            if (c == '.') {
                state_ = State::Dot;
                ++i;
                continue;
            }
            state_ = State::InLine;
            continue;  // reprocess as part of the line
        case State::Dot:
            // RFC 5321 4.5.2: a leading dot is removed; "." CRLF alone ends the data.
            if (c == '\r') {
                state_ = State::DotCr;
                ++i;
                continue;
            }
            state_ = State::InLine;
            continue;
        case State::DotCr:
            ++i;
            if (c == '\n') {
                state_ = State::Done;
                return i;
            }
            // "." CR <not LF>: the line was "." plus a bare CR.
            fail(DataError::BareCr);
            emit_char(out, '.');
            ++line_;
            --i;
            state_ = State::InLine;
            continue;
        case State::Cr:
            if (c == '\n') {
                emit_char(out, '\n');
                state_ = State::LineStart;
                ++i;
                continue;
            }
            fail(DataError::BareCr);
            state_ = State::InLine;
            continue;
        case State::InLine: {
            // Fast path: copy the run up to the next CR or LF.
            size_t j = i;
            while (j < n && in[j] != '\r' && in[j] != '\n') ++j;
            if (j > i) {
                std::string_view run = in.substr(i, j - i);
                if (limits_.max_line && line_ + run.size() > limits_.max_line) {
                    size_t room = line_ < limits_.max_line ? limits_.max_line - line_ : 0;
                    emit(out, run.substr(0, room));
                    fail(DataError::LineTooLong);
                    emit(out, run.substr(room));
                } else {
                    emit(out, run);
                }
                line_ += run.size();
                i = j;
                continue;
            }
            if (c == '\r') {
                state_ = State::Cr;
            } else {
                // Bare LF: refused, and not a line end either, so neither
                // "<LF>.<LF>" nor "<LF>.<CR><LF>" can end the data early.
                fail(DataError::BareLf);
            }
            ++i;
            continue;
        }
        case State::Done:
            break;
        }
    }
    return i;
}

void ChunkDecoder::feed(std::string_view in, std::string& out) {
    auto emit = [&](std::string_view bytes) {
        if (error_ != DataError::None) {
            size_ += bytes.size();
            return;
        }
        bool over = false;
        append_limited(out, bytes, size_, limits_.max_size, over);
        if (over) fail(DataError::TooBig);
    };
    size_t i = 0;
    const size_t n = in.size();
    while (i < n) {
        if (pending_cr_) {
            pending_cr_ = false;
            if (in[i] == '\n') {
                emit("\n");
                line_ = 0;
                ++i;
                continue;
            }
            fail(DataError::BareCr);
        }
        size_t j = i;
        while (j < n && in[j] != '\r' && in[j] != '\n') ++j;
        if (j > i) {
            std::string_view run = in.substr(i, j - i);
            if (limits_.max_line && line_ + run.size() > limits_.max_line) {
                size_t room = line_ < limits_.max_line ? limits_.max_line - line_ : 0;
                emit(run.substr(0, room));
                fail(DataError::LineTooLong);
                emit(run.substr(room));
            } else {
                emit(run);
            }
            line_ += run.size();
            i = j;
            continue;
        }
        if (in[i] == '\r') {
            pending_cr_ = true;
        } else {
            fail(DataError::BareLf);
            line_ = 0;
        }
        ++i;
    }
}

void ChunkDecoder::finish() {
    if (pending_cr_) fail(DataError::BareCr);
    pending_cr_ = false;
}

}  // namespace tern::smtp
