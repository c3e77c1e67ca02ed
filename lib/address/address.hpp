// RFC 5321 envelope paths: the <local@domain> of MAIL FROM and RCPT TO.
//
// parse_path() reads a Reverse-path / Forward-path (RFC 5321 4.1.2): angle
// brackets, an optional (ignored) source route "@a,@b:", a Dot-string or
// Quoted-string local part, and a domain or address literal.  SMTPUTF8
// (RFC 6531) widens atext, qtext and sub-domains to UTF-8; without it a
// non-ASCII byte is a syntax error.  The domain is lower-cased (ASCII only:
// U-labels are kept as written); the local part keeps its case because only
// the destination may interpret it (RFC 5321 2.4).
//
// Errors are full SMTP replies ("501 5.1.3 Bad recipient address syntax")
// so that smtpd can send them as they are.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "lib/core/result.hpp"

namespace tern::address {

struct Path {
    std::string address;  // canonical "local@domain" ("" for the null path <>)
    std::string local;    // decoded local part (quotes and quoted-pairs removed)
    std::string domain;   // lower-cased; "[192.0.2.1]" for an address literal
    bool utf8 = false;    // contains non-ASCII (needs SMTPUTF8)

    bool null() const { return address.empty(); }
};

struct PathOptions {
    bool allow_null = false;        // MAIL FROM:<>
    bool allow_postmaster = false;  // RCPT TO:<Postmaster> without a domain (RFC 5321 4.5.1)
    bool allow_utf8 = false;        // SMTPUTF8 given on MAIL FROM
    bool allow_bare = true;         // "user@example.org" without <> (many old clients)
    bool sender = true;             // only selects the wording of errors
};

// Maximum sizes, RFC 5321 4.5.3.1.
inline constexpr size_t kMaxLocalPart = 64;
inline constexpr size_t kMaxDomain = 255;
inline constexpr size_t kMaxPath = 256;

// Parses a path at the start of `text`.  On success *consumed is the number
// of bytes the path used (the rest are ESMTP parameters).
Result<Path> parse_path(std::string_view text, const PathOptions& options, size_t* consumed = nullptr);

// A whole address "local@domain" (no brackets), e.g. from a lookup table.
Result<Path> parse_address(std::string_view text, bool allow_utf8 = true);

// True when `domain` is a syntactically valid RFC 5321 Domain (ASCII or U-labels).
bool valid_domain(std::string_view domain, bool allow_utf8);

// Quotes a decoded local part when it is not a valid Dot-string.
std::string quote_local(std::string_view local);

// Lower-cases ASCII letters.
std::string lower_ascii(std::string_view text);

// Recipient delimiter (Postfix recipient_delimiter): "user+tag" → {"user", "tag"}.
// `delimiters` is a set of characters; the first one found splits.  A local
// part that starts with a delimiter, or has none, is returned whole.
struct LocalParts {
    std::string_view base;
    std::string_view extension;  // "" when there is none
    bool has_extension = false;
};
LocalParts split_extension(std::string_view local, std::string_view delimiters);

}  // namespace tern::address
