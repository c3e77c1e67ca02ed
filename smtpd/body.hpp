// BodyWriter: streams one message's decoded content (LF lines) into its
// queue body file, in chunks, never holding the whole message.
//
// The file starts with tern's Received: header.  While the header section
// streams by, the writer notes Message-ID (logged Postfix-style as
// "ID: message-id=<...>") and Date, and — for clients allowed to have them
// filled in (mynetworks, later authenticated users, like Postfix's
// local_header_rewrite_clients) — inserts the missing ones at the end of the
// header section, as Postfix's cleanup does.  The end of the header section
// is the first empty line, or the first line that cannot be a header field
// (RFC 5322 2.2: ftext name then ':'), or the end of the message.
//
// The file is made only when the content needs one: a message that ends
// within BodyOptions::in_memory_max bytes stays in memory (in_memory()),
// and the queue stores it with its records (docs/queue.md, "Small bodies").
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

namespace tern::smtpd {

struct BodyOptions {
    std::string received;         // complete "Received: ..." header, LF line endings
    bool add_missing = false;     // insert Message-ID / Date when absent
    std::string new_message_id;   // "<ID@host>", used when add_missing and absent
    std::string date;             // RFC 5322 date, used when add_missing and absent
    size_t in_memory_max = 0;     // a body up to this size is never written to a file
};

class BodyWriter {
public:
    // Makes the body file when the first bytes must leave memory; returns
    // its descriptor (the caller keeps it open and owns it).
    using OpenFile = std::function<Result<int>()>;

    BodyWriter(OpenFile open_file, BodyOptions options);

    // Decoded content (LF line endings).  Errors are remembered and reported
    // by finish(); once failed, further input is ignored.
    void append(std::string_view bytes);
    // Flushes and reports the first write error, if any.
    Status finish();

    uint64_t size() const { return written_ + out_.size(); }
    // After finish(): whether no file was made; the whole body is then
    // take_in_memory()'s.
    bool in_memory() const { return fd_ < 0; }
    std::string take_in_memory() { return std::move(out_); }
    // The Message-ID the message had or was given ("" when none).
    const std::string& message_id() const { return message_id_; }

private:
    enum class Header { LineStart, Name, Value, Body };
    void header_byte(char c);
    void end_of_headers(size_t insert_at);
    void flush();

    OpenFile open_file_;
    int fd_ = -1;
    BodyOptions options_;
    std::string out_;
    uint64_t written_ = 0;
    Status error_;
    Header state_ = Header::LineStart;
    size_t line_start_ = 0;  // offset in out_ of the current header line
    std::string name_;       // field name being read, lower-cased
    bool any_field_ = false;
    bool in_message_id_ = false;
    bool seen_message_id_ = false;
    bool seen_date_ = false;
    std::string message_id_;
};

}  // namespace tern::smtpd
