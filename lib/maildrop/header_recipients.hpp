// Recipients from message headers, for `sendmail -t`.
//
// RFC 5322 3.4 address lists ("Name <a@b>, c@d (comment), Group: e@f;")
// are reduced to their addr-specs.  With -t the recipients are the To:,
// Cc: and Bcc: fields — or, when the message has Resent-To:/Resent-Cc:/
// Resent-Bcc: fields (a resent message, RFC 5322 3.6.6), those instead —
// and Bcc:/Resent-Bcc: fields are removed so blind copies stay blind.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tern::maildrop {

// addr-specs in an address-list value (unfolded or folded).  Display
// names, comments and group names are dropped; quoted local parts keep
// their quotes.  Malformed entries are skipped and named in *bad.
std::vector<std::string> parse_address_list(std::string_view value, std::vector<std::string>* bad = nullptr);

struct HeaderRecipients {
    std::vector<std::string> recipients;
    std::string headers;  // the header section without Bcc:/Resent-Bcc: fields
    std::vector<std::string> bad;  // entries that were not addresses
};

// header_section: the message up to (not including) the blank line, LF
// line endings.
HeaderRecipients extract_header_recipients(std::string_view header_section);

}  // namespace tern::maildrop
