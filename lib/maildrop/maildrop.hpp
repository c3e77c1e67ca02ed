// The maildrop: how sendmail(1) hands a locally submitted message to qmgr.
//
// sendmail cannot write the queue's LMDB (it runs as the submitting user), so
// it writes one file per message into <queue_directory>/maildrop/ and pokes
// qmgr, which "picks up" complete files into the queue and deletes them —
// the same split as Postfix's postdrop/pickup.
//
// File format (version 1):
//
//   tern-maildrop 1\n
//   time <unix seconds>\n
//   uid <numeric uid of the submitter>\n
//   sender <address, empty for the null sender>\n
//   fullname <free text, may be empty>\n
//   notify <bits>\n             optional: RFC 3461 NOTIFY for every recipient
//                               (queue::Notify bits, decimal; sendmail -N)
//   ret FULL|HDRS\n             optional: RFC 3461 RET (sendmail -R)
//   envid <text>\n              optional: RFC 3461 ENVID (sendmail -V)
//   rcpt <address>\n            one per recipient, at least one
//   \n
//   <message: LF line endings, not dot-stuffed>
//   \n%end size=<20 digits> fnv=<16 hex digits>\n     fixed-length trailer
//
// `size` counts the message bytes; `fnv` is FNV-1a 64 over everything before
// the trailer.  A file without a valid trailer (a writer that died, a
// truncated copy, flipped bits) is rejected: qmgr never picks up half a
// message.  Writers create "tmp.<unique>" names, fsync, then rename to the
// final name, so readers ignore names starting with "tmp.".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

namespace tern::maildrop {

inline constexpr std::string_view kMagic = "tern-maildrop 1";
inline constexpr size_t kTrailerSize = 53;
inline constexpr size_t kMaxEnvelopeBytes = 1024 * 1024;  // header section limit
inline constexpr size_t kMaxRecipients = 10000;

struct Envelope {
    int64_t time = 0;
    uid_t uid = 0;
    std::string sender;
    std::string fullname;
    std::vector<std::string> recipients;
    uint8_t notify = 0;  // 0 = not given
    std::string ret;     // "", "FULL", "HDRS"
    std::string envid;
};

// FNV-1a 64, incremental.
class Checksum {
public:
    void update(std::string_view bytes);
    uint64_t value() const { return h_; }

private:
    uint64_t h_ = 0xcbf29ce484222325ULL;
};

// The envelope section including the blank line that ends it.  Fails when a
// value holds a newline or NUL, or there is no recipient.
Result<std::string> format_envelope(const Envelope& envelope);
// Parses an envelope section (as produced above, including the final blank
// line).  Rejects unknown magic, unknown or repeated fields, bad numbers.
Result<Envelope> parse_envelope(std::string_view text);

std::string format_trailer(uint64_t content_size, uint64_t checksum);
struct Trailer {
    uint64_t size = 0;
    uint64_t checksum = 0;
};
Result<Trailer> parse_trailer(std::string_view text);

// A whole maildrop file in memory (tests, fuzzing, small files).
struct Parsed {
    Envelope envelope;
    std::string_view content;  // points into the parsed text
};
Result<Parsed> parse(std::string_view file);
Result<std::string> serialize(const Envelope& envelope, std::string_view content);

// Streams one message into the maildrop directory.  The temporary file is
// removed unless commit() succeeded, so a failed or interrupted writer leaves
// nothing that looks like a message.
class Writer {
public:
    Writer() = default;
    ~Writer();
    Writer(Writer&&) noexcept;
    Writer& operator=(Writer&&) noexcept;
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    static Result<Writer> create(const std::string& directory, const Envelope& envelope);
    Status write(std::string_view content);
    // Trailer, fsync, rename to the final name, fsync of the directory.
    Result<std::string> commit();  // returns the final file name (no directory)

    // The temporary path, for a signal handler that must unlink it.
    const std::string& temp_path() const { return temp_path_; }

private:
    void abandon();
    std::string directory_;
    std::string temp_path_;
    std::string final_name_;
    Fd fd_;
    Checksum sum_;
    uint64_t size_ = 0;
    std::string buffer_;
};

// Streams a maildrop file back: envelope first, then content in chunks; the
// trailer (size, checksum) is verified while reading, so finish() is the
// point where the content is known complete and intact.
class Reader {
public:
    static Result<Reader> open(const std::string& path);
    const Envelope& envelope() const { return envelope_; }
    // Next chunk of content; empty at the end.
    Result<std::string> read(size_t max = 65536);
    // Verifies size and checksum after all content was read.
    Status finish();

private:
    Fd fd_;
    Envelope envelope_;
    uint64_t content_size_ = 0;
    uint64_t remaining_ = 0;
    Trailer trailer_;
    Checksum sum_;
};

// Complete (non-temporary) file names in the maildrop directory, oldest
// first by name (names start with the time).
Result<std::vector<std::string>> list(const std::string& directory);
bool is_temp_name(std::string_view name);
// Temporary files older than max_age seconds: writers that died without
// cleaning up (SIGKILL, a crash).  They are never messages.
std::vector<std::string> stale_temp_files(const std::string& directory, int64_t max_age);

}  // namespace tern::maildrop
