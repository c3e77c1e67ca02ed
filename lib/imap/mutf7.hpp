// Modified UTF-7 mailbox names (RFC 3501 5.1.3): how IMAP4rev1 clients
// write non-ASCII folder names ("Entw&APw-rfe" = "Entwürfe").  IMAP4rev2 and
// UTF8=ACCEPT clients use UTF-8 instead (RFC 9051 5.1, RFC 6855); the
// session converts at its edge and the store only sees UTF-8.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tern::imap {

// UTF-8 -> modified UTF-7.  Invalid UTF-8 yields nullopt.
std::optional<std::string> mutf7_encode(std::string_view utf8);
// Modified UTF-7 -> UTF-8.  Strict: nullopt for bad base64, a non-zero
// padding, a lone surrogate, printable ASCII in base64, "&" not followed by
// "-" or base64, or two encoded runs back to back ("&AOQ-&APY-").
std::optional<std::string> mutf7_decode(std::string_view mutf7);
// Whether the text is valid UTF-8 (no overlongs, surrogates or values past U+10FFFF).
bool valid_utf8(std::string_view s);

}  // namespace tern::imap
