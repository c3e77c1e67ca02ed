// Content-transfer decoders (RFC 2045 6.7 quoted-printable, 6.8 base64),
// tolerant of what real mail contains: characters outside the alphabet are
// skipped, broken escapes are kept literally.  Used for RFC 2047 words,
// BINARY fetches and SEARCH.
#pragma once

#include <string>
#include <string_view>

namespace tern::mime {

std::string base64_decode(std::string_view in);
// q_encoding: RFC 2047 "Q" (underscore is a space; no soft line breaks).
std::string qp_decode(std::string_view in, bool q_encoding = false);

}  // namespace tern::mime
