// Unit tests for lib/mime header-level parsing: fields and folding, RFC 2047
// encoded words, RFC 2231 parameters, address lists, transfer decoding,
// case folding and the SEARCH text matcher.  Expected values follow the RFC
// examples and rules, worked out by hand.
#include <catch2/catch.hpp>

#include <string>

#include "lib/mime/codec.hpp"
#include "lib/mime/header.hpp"
#include "lib/mime/search.hpp"

using namespace tern::mime;

TEST_CASE("header block: fields, folding, blank line", "[mime]") {
    std::string msg = "Subject: one\n two\nX-A:b\nbad line without colon\n\tcont\nFrom : a@b\n\nbody\n";
    auto h = parse_header(msg);
    REQUIRE(h.has_blank_line);
    CHECK(h.end == msg.find("body"));
    REQUIRE(h.fields.size() == 3);
    CHECK(h.fields[0].name == "Subject");
    CHECK(unfold(h.fields[0].value) == "one two");
    CHECK(h.fields[1].value == "b");
    CHECK(h.fields[2].name == "From");  // obsolete "Name :" form
    CHECK(h.get("x-a") == std::optional<std::string_view>("b"));
    CHECK_FALSE(h.get("to"));

    auto no_blank = parse_header("A: 1\nB: 2");
    CHECK_FALSE(no_blank.has_blank_line);
    CHECK(no_blank.end == 9);
    CHECK(no_blank.fields.size() == 2);
    CHECK(parse_header("").fields.empty());
    CHECK(parse_header("\r\nbody").end == 2);
}

TEST_CASE("RFC 2047 encoded words", "[mime]") {
    // RFC 2047 section 8 examples.
    CHECK(decode_words("=?ISO-8859-1?Q?a?=") == "a");
    CHECK(decode_words("=?ISO-8859-1?Q?a?= b") == "a b");
    CHECK(decode_words("=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=") == "ab");
    CHECK(decode_words("=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=") == "ab");
    CHECK(decode_words("=?ISO-8859-1?Q?a?=\n    =?ISO-8859-1?Q?b?=") == "ab");
    CHECK(decode_words("=?ISO-8859-1?Q?a_b?=") == "a b");
    CHECK(decode_words("=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=") == "a b");
    CHECK(decode_words("=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>") == "Keith Moore <moore@cs.utk.edu>");
    CHECK(decode_words("=?ISO-8859-1?Q?Andr=E9?= Pirard") == "Andr\xc3\xa9 Pirard");
    CHECK(decode_words("=?UTF-8?B?w6k=?=") == "\xc3\xa9");
    CHECK(decode_words("=?utf-8*fr?B?w6k=?=") == "\xc3\xa9");  // RFC 2231 5 language tag
    // Broken words stay literal; text between words is kept.
    CHECK(decode_words("=?UTF-8?X?abc?=") == "=?UTF-8?X?abc?=");
    CHECK(decode_words("=?UTF-8?Q?unterminated") == "=?UTF-8?Q?unterminated");
    CHECK(decode_words("x =?UTF-8?Q?a?= y") == "x a y");
    CHECK(decode_words("=?no-such-charset?Q?abc?=") == "abc");
}

TEST_CASE("RFC 2045/2231 parameters", "[mime]") {
    auto ct = parse_content_value("Text/Plain; charset=\"us-ascii\" (comment); format=flowed");
    CHECK(ct.value == "text/plain");
    REQUIRE(ct.params.size() == 2);
    CHECK(ct.params[0].name == "charset");
    CHECK(ct.params[0].value == "us-ascii");
    CHECK(ct.params[1].value == "flowed");

    // RFC 2231 3: continuations joined in order.
    auto cont = parse_content_value("message/external-body; access-type=URL;\n URL*0=\"ftp://\";\n URL*1=\"cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar\"");
    REQUIRE(cont.params.size() == 2);
    CHECK(cont.params[1].name == "URL");
    CHECK(cont.params[1].value == "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar");

    // RFC 2231 4: charset and language; kept encoded under "name*".
    auto ext = parse_content_value("application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A");
    REQUIRE(ext.params.size() == 1);
    CHECK(ext.params[0].name == "title*");
    CHECK(ext.params[0].value == "us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A");
    CHECK(ext.decoded("title") == std::optional<std::string>("This is ***fun***"));

    // RFC 2231 4.1: mixed extended / plain continuations.
    auto mixed = parse_content_value("application/x-stuff;\n title*0*=us-ascii'en'This%20is%20even%20more%20;\n title*1*=%2A%2A%2Afun%2A%2A%2A%20;\n title*2=\"isn't it!\"");
    REQUIRE(mixed.params.size() == 1);
    CHECK(mixed.params[0].name == "title*");
    CHECK(mixed.decoded("title") == std::optional<std::string>("This is even more ***fun*** isn't it!"));

    auto utf8 = parse_content_value("attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf");
    CHECK(utf8.value == "attachment");
    CHECK(utf8.decoded("filename") == std::optional<std::string>("\xe2\x82\xac rates.pdf"));
    // RFC 2047 in a quoted parameter (not standard, common): decoded too.
    auto word = parse_content_value("attachment; filename=\"=?UTF-8?Q?r=C3=A9sum=C3=A9.pdf?=\"");
    CHECK(word.decoded("filename") == std::optional<std::string>("r\xc3\xa9sum\xc3\xa9.pdf"));

    // Hostile: no value, stray semicolons, unterminated quote.
    auto bad = parse_content_value(";;; =; a; b=\"unterminated");
    CHECK(bad.value.empty());
    REQUIRE(bad.params.size() == 1);
    CHECK(bad.params[0].value == "unterminated");
    auto gap = parse_content_value("x/y; n*0=a; n*2=c");
    REQUIRE(gap.params.size() == 1);
    CHECK(gap.params[0].value == "a");  // a gap in the numbering ends the value
}

TEST_CASE("address lists for ENVELOPE", "[mime]") {
    auto a = parse_address_list("\"Joe Q. Public\" <john.q.public@example.com>, Mary Smith <mary@x.test>, jdoe@one.test");
    REQUIRE(a.size() == 3);
    CHECK(a[0].name == std::optional<std::string>("Joe Q. Public"));
    CHECK(a[0].mailbox == std::optional<std::string>("john.q.public"));
    CHECK(a[0].host == std::optional<std::string>("example.com"));
    CHECK(a[1].name == std::optional<std::string>("Mary Smith"));
    CHECK_FALSE(a[2].name);
    CHECK(a[2].mailbox == std::optional<std::string>("jdoe"));

    // RFC 5322 A.1.3: group syntax.
    auto g = parse_address_list("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, Undisclosed recipients:;");
    REQUIRE(g.size() == 7);
    CHECK(g[0].group_start);
    CHECK(g[0].mailbox == std::optional<std::string>("A Group"));
    CHECK(g[3].mailbox == std::optional<std::string>("jdoe"));
    CHECK(g[4].group_end);
    CHECK(g[5].group_start);
    CHECK(g[5].mailbox == std::optional<std::string>("Undisclosed recipients"));
    CHECK(g[6].group_end);

    // RFC 5322 A.6.1 obsolete route, comments.
    auto r = parse_address_list("Joe Q. Public <@machine.tld:john.q.public@example.com>, (comment) Mary <mary (x) @ example.net>");
    REQUIRE(r.size() == 2);
    CHECK(r[0].name == std::optional<std::string>("Joe Q. Public"));
    CHECK(r[0].route == std::optional<std::string>("@machine.tld"));
    CHECK(r[0].mailbox == std::optional<std::string>("john.q.public"));
    CHECK(r[1].host == std::optional<std::string>("example.net"));

    // Hostile input yields something, never crashes.
    CHECK(parse_address_list("").empty());
    CHECK(parse_address_list("<>").empty());
    auto odd = parse_address_list("a@b@c, <<x>>, ;;;, :;, \"q");
    CHECK(odd.size() >= 1);
    auto nodomain = parse_address_list("postmaster");
    REQUIRE(nodomain.size() == 1);
    CHECK(nodomain[0].host == std::optional<std::string>(""));
}

TEST_CASE("transfer decoding", "[mime]") {
    CHECK(base64_decode("SGVsbG8s\nIHdvcmxkIQ==") == "Hello, world!");
    CHECK(base64_decode("SGk*#") == "Hi");
    CHECK(base64_decode("") == "");
    CHECK(qp_decode("Soft=\n break and =3D sign") == "Soft break and = sign");
    CHECK(qp_decode("a=\r\nb") == "ab");
    CHECK(qp_decode("trailing   \nnext") == "trailing\nnext");
    CHECK(qp_decode("bad =ZZ escape=") == "bad =ZZ escape");
    CHECK(qp_decode("a_b", true) == "a b");
}

TEST_CASE("case folding and text matching", "[mime][search]") {
    CHECK(fold_case("HeLLo") == "hello");
    CHECK(fold_case("\xc3\x89T\xc3\x89") == "\xc3\xa9t\xc3\xa9");      // ÉTÉ
    CHECK(fold_case("\xd0\x9f\xd0\xa0\xd0\x98") == "\xd0\xbf\xd1\x80\xd0\xb8");  // ПРИ → при
    CHECK(fold_case("\xce\xa3") == "\xcf\x83");                      // Σ → σ
    CHECK(fold_case("\xc5\x81") == "\xc5\x82");                      // Ł → ł
    CHECK(fold_case("\xff\xfe") == "\xff\xfe");                      // invalid bytes kept
    TextMatcher m("CAFÉ");
    CHECK(m.matches_text("le caf\xc3\xa9 noir"));
    CHECK_FALSE(m.matches_text("cafe"));
    CHECK(TextMatcher("").matches_text("anything"));
}
