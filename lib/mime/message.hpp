// A message's MIME structure (RFC 2045/2046): the tree of parts with their
// byte ranges in the stored message, parsed in one pass over the bytes.
//
// Offsets index the stored bytes (LF line ends on disk; CRLF is tolerated).
// Sizes and line counts that IMAP reports are in CRLF terms: every LF not
// preceded by CR counts one byte more.  A part of a multipart ends before the
// line end that precedes the next boundary line (RFC 2046 5.1.1: that line
// end belongs to the boundary).
//
// A message/rfc822 part has exactly one child: the encapsulated message
// (whose own header is the child's header).  Hostile input (unterminated
// parts, missing boundaries, nesting beyond kMaxDepth) never fails: what
// cannot be structured is a leaf of its declared or default type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/mime/header.hpp"

namespace tern::mime {

inline constexpr int kMaxDepth = 64;

struct Part {
    size_t header_begin = 0;  // the part's MIME header (the message header for a message)
    size_t body_begin = 0;    // just after the blank line ending the header
    size_t body_end = 0;
    uint64_t header_crlf_size = 0;  // [header_begin, body_begin) with CRLF line ends
    uint64_t body_crlf_size = 0;
    uint64_t body_lines = 0;

    // Content-Type, lower case; defaults per RFC 2045 5.2 / RFC 2046 5.1.5.
    std::string type = "text";
    std::string subtype = "plain";
    std::vector<Param> params;
    bool content_type_present = false;
    std::string id, description, md5, location;  // raw, unfolded; empty = NIL
    std::string encoding;                         // Content-Transfer-Encoding, lower case; empty = 7bit
    std::string disposition;                      // lower case; empty = NIL
    std::vector<Param> disposition_params;
    std::vector<std::string> languages;

    std::vector<Part> children;  // multipart parts, or the encapsulated message

    bool is_multipart() const { return type == "multipart"; }
    bool is_message() const { return type == "message" && (subtype == "rfc822" || subtype == "global"); }
};

// Parses a whole message.  The returned root is the message itself: its
// header is the message header and its type the message's Content-Type.
Part parse_message(std::string_view data);

// CRLF size of data: bytes plus LFs that are not preceded by CR.
uint64_t crlf_size(std::string_view data);

}  // namespace tern::mime
