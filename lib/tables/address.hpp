// Recipient address pieces used by table lookups: split at the last '@',
// lower-case for keys, and strip a recipient_delimiter extension
// ("user+tag" → "user"), as Postfix's local(8) and virtual(8) do.
#pragma once

#include <string>
#include <string_view>

namespace tern::tables {

struct AddressParts {
    std::string local;   // as given (case kept: a local part may be case-sensitive, RFC 5321 2.4)
    std::string domain;  // lower-cased, without a trailing dot; empty for a bare "user"
};

AddressParts split_address(std::string_view address);
std::string lowercase(std::string_view text);

// The local part without its extension: everything before the first character
// that is one of `delimiters`.  Returns local unchanged when there is none, or
// when the delimiter is the first character ("+foo" stays "+foo").
std::string strip_extension(std::string_view local, std::string_view delimiters);
// The extension ("tag" of "user+tag"), empty when none.
std::string extension_of(std::string_view local, std::string_view delimiters);

}  // namespace tern::tables
