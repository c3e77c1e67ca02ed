// Maildir names: folder directory names (Maildir++ ".A.B") and message file
// names ("<base>:2,<flags>", base carrying ",S=<size>,W=<crlf size>").
//
// Message bases are opaque (local-delivery's naming may change) except for
// the S= and W= fields.  Flag letters (cr.yp.to/proto/maildir.html): D draft,
// F flagged, P passed, R replied (\Answered), S seen, T trashed (\Deleted);
// letters we do not map (P, lower-case keyword letters of other software)
// are kept when we rename a file for a flag change.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tern::mailstore {

struct MessageName {
    std::string_view base;    // everything before ":2," (the whole name without it)
    std::string_view letters; // after ":2,", "" when absent
    bool has_info = false;    // ":2," present
    std::optional<uint64_t> size;       // S=
    std::optional<uint64_t> crlf_size;  // W=
};

MessageName parse_message_name(std::string_view name);

// System flag bits (SystemFlag) of the letters we map.
uint8_t flags_from_letters(std::string_view letters);
// "<base>:2,<letters>": our letters for flags plus the unmapped ones of
// `keep`, in ASCII order as the Maildir spec requires.
std::string message_file_name(std::string_view base, uint8_t flags, std::string_view keep = {});

}  // namespace tern::mailstore
