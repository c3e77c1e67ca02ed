// Text matching for IMAP SEARCH (RFC 9051 6.4.4): substring matches on
// header fields and body text after MIME decoding (RFC 2047 words,
// base64/quoted-printable, charsets to UTF-8), compared case-insensitively
// on Unicode simple case folding of the common scripts (Latin, Greek,
// Cyrillic; other code points compare exactly).
#pragma once

#include <string>
#include <string_view>

#include "lib/mime/message.hpp"

namespace tern::mime {

// Case-folded copy of UTF-8 text (invalid bytes kept).
std::string fold_case(std::string_view utf8);

// Position of lower_needle (ASCII, lower case) in hay compared ignoring ASCII case.
size_t ascii_ifind(std::string_view hay, std::string_view lower_needle);

// A needle prepared once for many messages.
class TextMatcher {
public:
    explicit TextMatcher(std::string_view needle_utf8);
    bool matches(std::string_view folded_haystack) const;  // haystack from fold_case()
    bool matches_text(std::string_view utf8) const;        // folds first
    bool empty() const { return needle_.empty(); }
    // True when the needle cannot be in any decoded field of this raw header
    // block (a quick no before parsing); false means "look closer".
    bool absent_from_raw(std::string_view raw_header) const;

private:
    std::string needle_;
    bool ascii_ = false;  // the folded needle is ASCII only
    bool has_s_ = false;  // ... and holds an "s" (which U+017F folds to)
    bool has_space_ = false;
};

// HEADER field string: any field of that name whose decoded value contains
// the needle (an empty needle matches when the field exists).
bool header_contains(const Part& message, std::string_view data, std::string_view field, const TextMatcher& m);
// The same over a bare header block, such as the cached header lines of
// mailstore::MessageData::headers (SEARCH SUBJECT/FROM/... without opening
// the message when the field is among mailstore::cached_header_fields()).
bool header_block_contains(std::string_view header_block, std::string_view field, const TextMatcher& m);
// BODY string: the text of any part (decoded), headers excluded.
bool body_contains(const Part& message, std::string_view data, const TextMatcher& m);
// TEXT string: header or body.
bool text_contains(const Part& message, std::string_view data, const TextMatcher& m);

}  // namespace tern::mime
