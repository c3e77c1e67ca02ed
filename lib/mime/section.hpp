// IMAP section addressing (RFC 9051 6.4.5): which bytes of the stored
// message BODY[section] means, and the LF → CRLF conversion the protocol
// layer applies to them (disk holds LF, IMAP counts and sends CRLF).
//
//   ""               whole message        "HEADER" / "TEXT"  of the message
//   "1.2"            body of part 1.2     "1.2.MIME"         its MIME header
//   "3.HEADER", "3.TEXT", "3.HEADER.FIELDS (...)"  of the message/rfc822 part 3
//
// A non-multipart message has a part 1 (its body); part numbers applied to
// a message/rfc822 part address the encapsulated message's parts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"
#include "lib/mime/message.hpp"

namespace tern::mime {

enum class SectionText : uint8_t { Full, Header, HeaderFields, HeaderFieldsNot, Text, Mime };

struct SectionSpec {
    std::vector<uint32_t> path;  // part numbers, 1-based
    SectionText text = SectionText::Full;
    std::vector<std::string> fields;  // for HeaderFields / HeaderFieldsNot
};

// Parses the inside of the brackets: "1.2.HEADER.FIELDS (From To)".
Result<SectionSpec> parse_section(std::string_view text);

struct SectionRange {
    size_t begin = 0;  // byte range of the stored message
    size_t end = 0;
    // HEADER.FIELDS[.NOT]: the selected lines (already CRLF, with the final
    // blank line), to send instead of the range.
    std::optional<std::string> filtered;
    const Part* part = nullptr;  // the addressed part (for BINARY: its encoding)
};

// Resolves a section against the parsed message.  A part number that does
// not exist is an error (the IMAP layer then returns an empty string or NO).
Result<SectionRange> resolve_section(const Part& message, std::string_view data, const SectionSpec& spec);

// Appends data with every LF not preceded by CR turned into CRLF.
void append_crlf(std::string& out, std::string_view data);
// The [offset, offset+count) slice of the CRLF form of data (partial fetch
// <offset.count>), without converting what lies before offset into memory.
std::string crlf_slice(std::string_view data, uint64_t offset, uint64_t count);

// The header lines of block whose names are (not) in fields, CRLF, followed
// by the blank line (RFC 9051 6.4.5: HEADER.FIELDS always ends with it).
std::string filter_header(std::string_view block, const std::vector<std::string>& fields, bool exclude);

// Content-Transfer-Encoding decoding (BINARY[], SEARCH).  Identity
// encodings return the bytes unchanged; an unknown encoding is an error
// (RFC 3516: UNKNOWN-CTE).
Result<std::string> decode_transfer(std::string_view data, std::string_view encoding);

}  // namespace tern::mime
