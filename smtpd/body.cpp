// Body file writing with header inspection (see body.hpp).
#include "smtpd/body.hpp"

#include <unistd.h>

#include <cerrno>

#include "lib/core/errno_text.hpp"

namespace tern::smtpd {
namespace {

constexpr size_t kChunk = 64 * 1024;
constexpr size_t kMaxFieldName = 998;  // RFC 5322 2.1.1 line limit
constexpr size_t kMaxMessageId = 998;

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return std::string(s);
}

}  // namespace

BodyWriter::BodyWriter(OpenFile open_file, BodyOptions options)
    : open_file_(std::move(open_file)), options_(std::move(options)) {
    out_ = options_.received;  // grows as needed: most messages are a few KiB
    line_start_ = out_.size();
}

void BodyWriter::append(std::string_view bytes) {
    if (!error_) return;
    size_t i = 0;
    while (state_ != Header::Body && i < bytes.size()) header_byte(bytes[i++]);
    if (i < bytes.size()) out_.append(bytes.substr(i));
    // In the header section a line may still need an insertion before it, so
    // only lines already classified may leave the buffer.
    if (out_.size() >= kChunk && (state_ == Header::Body || state_ == Header::Value)) flush();
}

void BodyWriter::header_byte(char c) {
    switch (state_) {
    case Header::LineStart:
        line_start_ = out_.size();
        if (c == '\n') {
            end_of_headers(line_start_);
            out_.push_back(c);
            state_ = Header::Body;
            return;
        }
        if (c == ' ' || c == '\t') {
            // Continuation of the previous field; before any field it is body.
            if (!any_field_) {
                end_of_headers(line_start_);
                out_.push_back(c);
                state_ = Header::Body;
                return;
            }
            out_.push_back(c);
            if (in_message_id_) message_id_.push_back(' ');
            state_ = Header::Value;
            return;
        }
        name_.clear();
        in_message_id_ = false;
        state_ = Header::Name;
        [[fallthrough]];
    case Header::Name: {
        auto u = static_cast<unsigned char>(c);
        if (c == ':' && !name_.empty()) {
            out_.push_back(c);
            any_field_ = true;
            if (name_ == "message-id") {
                if (!seen_message_id_) {
                    in_message_id_ = true;
                    message_id_.clear();
                }
                seen_message_id_ = true;
            } else if (name_ == "date") {
                seen_date_ = true;
            }
            state_ = Header::Value;
            return;
        }
        if (u >= 33 && u <= 126 && c != ':' && name_.size() < kMaxFieldName) {
            name_.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
            out_.push_back(c);
            return;
        }
        // Not a header field: the header section ended before this line.
        end_of_headers(line_start_);
        out_.push_back(c);
        state_ = Header::Body;
        return;
    }
    case Header::Value:
        out_.push_back(c);
        if (c == '\n') {
            if (in_message_id_) message_id_ = trim(message_id_);
            state_ = Header::LineStart;
        } else if (in_message_id_ && message_id_.size() < kMaxMessageId) {
            message_id_.push_back(c);
        }
        return;
    case Header::Body:
        out_.push_back(c);
        return;
    }
}

void BodyWriter::end_of_headers(size_t insert_at) {
    if (in_message_id_) {
        message_id_ = trim(message_id_);
        in_message_id_ = false;
    }
    if (!options_.add_missing) return;
    std::string added;
    if (!seen_message_id_ && !options_.new_message_id.empty()) {
        added += "Message-ID: " + options_.new_message_id + "\n";
        message_id_ = options_.new_message_id;
        seen_message_id_ = true;
    }
    if (!seen_date_ && !options_.date.empty()) {
        added += "Date: " + options_.date + "\n";
        seen_date_ = true;
    }
    if (insert_at > out_.size()) insert_at = out_.size();
    out_.insert(insert_at, added);
}

void BodyWriter::flush() {
    if (error_ && fd_ < 0) {
        auto fd = open_file_();
        if (fd) fd_ = *fd;
        else error_ = fd.error();
    }
    size_t off = 0;
    while (error_ && off < out_.size()) {
        ssize_t n = ::write(fd_, out_.data() + off, out_.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            error_ = errno_error("write queue file");
            break;
        }
        off += static_cast<size_t>(n);
    }
    written_ += off;
    out_.clear();
    line_start_ = 0;
}

Status BodyWriter::finish() {
    // The message ended inside the header section (no body at all).
    if (state_ == Header::LineStart) {
        end_of_headers(out_.size());
    } else if (state_ == Header::Name) {
        end_of_headers(line_start_);  // a last partial line that is no field
    } else if (state_ == Header::Value) {
        out_.push_back('\n');
        end_of_headers(out_.size());
    }
    state_ = Header::Body;
    if (fd_ < 0 && out_.size() <= options_.in_memory_max) return error_;
    flush();
    // The file may be a recycled body, longer than this one (Store::create_body).
    if (error_ && ::ftruncate(fd_, static_cast<off_t>(written_)) != 0) error_ = errno_error("truncate queue file");
    return error_;
}

}  // namespace tern::smtpd
