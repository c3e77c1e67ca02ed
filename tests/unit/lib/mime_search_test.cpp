// Unit tests for SEARCH text matching (lib/mime/search): the ASCII fast path
// agrees with matching on case-folded text, including its one exception
// (U+017F LATIN SMALL LETTER LONG S folds to "s"), and parts that need no
// decoding are matched in place while encoded ones are decoded first.
#include <catch2/catch.hpp>

#include <string>

#include "lib/mime/message.hpp"
#include "lib/mime/search.hpp"

using namespace tern::mime;

TEST_CASE("ascii_ifind: positions, case, boundaries", "[mime][search]") {
    CHECK(ascii_ifind("Hello World", "world") == 6);
    CHECK(ascii_ifind("HELLO", "hello") == 0);
    CHECK(ascii_ifind("abc", "abcd") == std::string_view::npos);
    CHECK(ascii_ifind("", "a") == std::string_view::npos);
    CHECK(ascii_ifind("anything", "") == 0);
    CHECK(ascii_ifind("xxAb", "ab") == 2);                   // match ends at the last byte
    CHECK(ascii_ifind("aaaaaaaaab", "aab") == 7);            // overlapping candidates
    CHECK(ascii_ifind("Aa aA AAB", "aab") == 6);             // both cases of the first byte interleaved
    CHECK(ascii_ifind("a\0b\xff" "AB", std::string_view("ab")) == std::string_view::npos);
    CHECK(ascii_ifind(std::string_view("a\0b\xff" "AB", 6), "ab") == 4);  // NUL and high bytes in between
    CHECK(ascii_ifind("1-2-3", "2-3") == 2);                 // non-letters compare exactly
    CHECK(ascii_ifind("[@", "{`") == std::string_view::npos);  // no folding outside A-Z
}

TEST_CASE("TextMatcher: the ASCII path agrees with folding", "[mime][search]") {
    CHECK(TextMatcher("QUOKKA").matches_text("we saw a Quokka near the river"));
    CHECK_FALSE(TextMatcher("quokka").matches_text("we saw a quokk near the river"));
    // Long s (U+017F, C5 BF) folds to "s": found only through the folding path.
    CHECK(TextMatcher("last").matches_text("la\xC5\xBFt"));
    CHECK_FALSE(TextMatcher("lat").matches_text("la\xC5\xBFt"));
    // Non-ASCII letters never fold to ASCII ones.
    CHECK_FALSE(TextMatcher("cafe").matches_text("CAF\xC3\x89"));
    CHECK(TextMatcher("caf\xC3\xA9").matches_text("CAF\xC3\x89"));
    // Invalid UTF-8 is kept as bytes on both paths.
    CHECK(TextMatcher("ab").matches_text("\xff" "AB\xfe"));
    CHECK(TextMatcher("").matches_text("anything"));
}

TEST_CASE("body_contains: in place for identity encodings, decoded otherwise", "[mime][search]") {
    const std::string msg =
        "Subject: s\n"
        "Content-Type: multipart/mixed; boundary=b\n\n"
        "--b\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n"
        "Grüße from the FIRST part\n"
        "--b\nContent-Type: text/plain; charset=iso-8859-1\n\n"
        "caf\xE9 latin1\n"
        "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
        "aGlkZGVuIHdvbWJhdA==\n"
        "--b\nContent-Type: application/octet-stream\n\n"
        "binary koala\n"
        "--b--\n";
    Part root = parse_message(msg);
    CHECK(body_contains(root, msg, TextMatcher("first part")));
    CHECK(body_contains(root, msg, TextMatcher("GR\xC3\x9C\xC3\x9F" "E")));  // folded Ü
    CHECK(body_contains(root, msg, TextMatcher("CAF\xC3\x89")));            // latin1 converted to UTF-8
    CHECK(body_contains(root, msg, TextMatcher("WOMBAT")));                 // base64 decoded
    CHECK_FALSE(body_contains(root, msg, TextMatcher("aGlkZGVu")));         // ... and not matched raw
    CHECK_FALSE(body_contains(root, msg, TextMatcher("koala")));            // not text
    CHECK_FALSE(body_contains(root, msg, TextMatcher("subject")));          // headers excluded
}

TEST_CASE("absent_from_raw: a quick no only where decoding could not make a match", "[mime][search]") {
    const std::string plain = "Subject: Weekly report\r\nFrom: a@b\r\n";
    CHECK(TextMatcher("zeppelin").absent_from_raw(plain));
    CHECK_FALSE(TextMatcher("REPORT").absent_from_raw(plain));                  // present: look closer
    CHECK_FALSE(TextMatcher("weekly report").absent_from_raw(plain));           // white space: could span a fold
    CHECK_FALSE(TextMatcher("zeppelin").absent_from_raw("Subject: =?UTF-8?B?emVwcGVsaW4=?=\r\n"));  // encoded word
    CHECK_FALSE(TextMatcher("last").absent_from_raw("Subject: la\xC5\xBFt\r\n"));  // long s folds to "s"
    CHECK_FALSE(TextMatcher("caf\xC3\xA9").absent_from_raw(plain));             // non-ASCII needle: no shortcut
    // And header_block_contains agrees in each case.
    CHECK_FALSE(header_block_contains(plain, "subject", TextMatcher("zeppelin")));
    CHECK(header_block_contains("Subject: =?UTF-8?B?emVwcGVsaW4=?=\r\n", "subject", TextMatcher("ZEPPELIN")));
    CHECK(header_block_contains("Subject: la\xC5\xBFt\r\n", "subject", TextMatcher("LAST")));
    CHECK(header_block_contains("Subject: weekly\r\n report\r\n", "subject", TextMatcher("weekly report")));
    CHECK_FALSE(header_block_contains("Subject: x\r\nX-Other: zeppelin\r\n", "subject", TextMatcher("zeppelin")));
}
