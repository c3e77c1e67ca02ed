// Header-level MIME parsing: a header block split into fields (RFC 5322
// 2.2, folding, obsolete forms tolerated), RFC 2047 encoded words decoded to
// UTF-8, Content-Type style values with parameters (RFC 2045 5.1, RFC 2231
// continuations and charsets), and address lists (RFC 5322 3.4, groups and
// obsolete routes) as the IMAP ENVELOPE needs them.
//
// Everything works on views into the message bytes; nothing here throws or
// crashes on malformed input: it yields what can be recognised.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::mime {

struct HeaderField {
    std::string_view name;   // as written, without the colon
    std::string_view value;  // raw value after the colon: folding (LF/CRLF + WSP) kept
    std::string_view raw;    // the whole field including its final line end
};

struct HeaderBlock {
    std::vector<HeaderField> fields;
    size_t end = 0;  // offset just past the blank line ending the block (or the input size)
    bool has_blank_line = false;

    // First field of that name (case-insensitive); nullopt when absent.
    std::optional<std::string_view> get(std::string_view name) const;
};

// Splits the header block at the start of `data`.  A line without a colon
// (malformed) is kept as part of the previous field or skipped.
HeaderBlock parse_header(std::string_view data);

// Removes folding (line ends followed by WSP) and trims surrounding WSP.
std::string unfold(std::string_view value);

// RFC 2047: decodes encoded words (=?charset?B|Q?...?=) to UTF-8, drops the
// white space between adjacent encoded words, leaves other text as is
// (unfolded).  Unknown charsets and broken words are kept literally.
std::string decode_words(std::string_view value);

// Converts text in `charset` to UTF-8 (iconv); invalid sequences become
// U+FFFD.  Unknown charset: the bytes as they are.
std::string to_utf8(std::string_view text, std::string_view charset);

struct Param {
    std::string name;   // as written (continuation parts joined; an RFC 2231 extended value named "name*")
    std::string value;  // unquoted; extended values keep charset'lang'%XX form
};

struct ContentValue {
    std::string value;  // "text/plain", "attachment" (lower case, unquoted)
    std::vector<Param> params;
    const Param* find(std::string_view name) const;  // case-insensitive, plain name only
    // The decoded UTF-8 value of a parameter, RFC 2231 (name*) preferred over
    // the plain one, RFC 2047 words in plain values decoded (common practice).
    std::optional<std::string> decoded(std::string_view name) const;
};

// Parses "type/subtype; a=b; c*0=...; c*1=..." (comments skipped).
ContentValue parse_content_value(std::string_view raw);

struct Address {
    // An ENVELOPE address (RFC 9051 7.5.2).  A group start has only mailbox
    // (the group name) set; a group end has nothing set.
    std::optional<std::string> name;   // display name, raw (encoded words kept)
    std::optional<std::string> route;  // obsolete source route "@a,@b"
    std::optional<std::string> mailbox;
    std::optional<std::string> host;
    bool group_start = false;
    bool group_end = false;
};

std::vector<Address> parse_address_list(std::string_view raw);

// Case-insensitive ASCII comparison of header names.
bool iequals(std::string_view a, std::string_view b);

}  // namespace tern::mime
