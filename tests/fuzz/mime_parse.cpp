// Fuzz target: the MIME parser and everything built on it (ENVELOPE,
// BODYSTRUCTURE, section addressing, CRLF slices, SEARCH decoding) must
// accept any bytes without crashing, and the part ranges it reports must
// lie inside the input and nest.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/mime/imap_format.hpp"
#include "lib/mime/message.hpp"
#include "lib/mime/search.hpp"
#include "lib/mime/section.hpp"

namespace {

void check_ranges(const tern::mime::Part& p, size_t begin, size_t end) {
    if (p.header_begin < begin || p.header_begin > p.body_begin || p.body_begin > p.body_end || p.body_end > end)
        std::abort();
    for (const auto& c : p.children) check_ranges(c, p.body_begin, p.body_end);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto root = tern::mime::parse_message(input);
    check_ranges(root, 0, size);
    (void)tern::mime::envelope(root, input);
    (void)tern::mime::bodystructure(root, input, true);
    for (const char* spec : {"1", "1.1", "2.1.MIME", "TEXT", "HEADER", "1.HEADER", "2.TEXT", "HEADER.FIELDS (From Subject)"}) {
        auto s = tern::mime::parse_section(spec);
        if (!s) std::abort();
        auto r = tern::mime::resolve_section(root, input, *s);
        if (r && (r->begin > r->end || r->end > size)) std::abort();
    }
    (void)tern::mime::parse_section(input.substr(0, 64));
    (void)tern::mime::body_contains(root, input, tern::mime::TextMatcher("needle"));
    (void)tern::mime::header_contains(root, input, "subject", tern::mime::TextMatcher("x"));
    // SEARCH's shortcuts agree with matching on folded text: the ASCII path
    // of matches_text(), and absent_from_raw() before header_block_contains().
    std::string needle;
    for (char c : input.substr(0, 4))
        if (static_cast<unsigned char>(c) < 0x80) needle += c;
    tern::mime::TextMatcher m(needle);
    std::string_view hay = size > 4 ? input.substr(4) : input;
    bool folded = tern::mime::fold_case(hay).find(tern::mime::fold_case(needle)) != std::string::npos;
    if (m.matches_text(hay) != folded) std::abort();
    if (m.absent_from_raw(hay) && tern::mime::header_block_contains(hay, "subject", m)) std::abort();
    (void)tern::mime::parse_address_list(input);
    (void)tern::mime::decode_words(input.substr(0, 512));
    (void)tern::mime::crlf_slice(input, size / 3, size / 2);
    return 0;
}
