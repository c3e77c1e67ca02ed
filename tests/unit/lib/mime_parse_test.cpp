// Unit tests for lib/mime structure, IMAP renderings and sections: real-world
// shaped messages in tests/fixtures/mime/ (simple, nested multipart with
// message/rfc822 and an RFC 2231 attachment, malformed) against ENVELOPE /
// BODYSTRUCTURE strings derived by hand from RFC 9051 7.5.2 (sizes and line
// counts in CRLF terms, the line end before a boundary excluded).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "lib/mime/imap_format.hpp"
#include "lib/mime/message.hpp"
#include "lib/mime/search.hpp"
#include "lib/mime/section.hpp"

using namespace tern::mime;

namespace {

std::string fixture(const std::string& name) {
    auto dir = std::filesystem::path(__FILE__).parent_path() / "../../fixtures/mime";
    std::ifstream in(dir / name, std::ios::binary);
    REQUIRE(in.good());
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string section(const std::string& msg, const Part& root, std::string_view spec) {
    auto s = parse_section(spec);
    REQUIRE(s.ok());
    auto r = resolve_section(root, msg, *s);
    REQUIRE(r.ok());
    if (r->filtered) return *r->filtered;
    return msg.substr(r->begin, r->end - r->begin);
}

const char* kFred = "((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\"))";
const char* kInner = "((\"Inner Sender\" NIL \"inner\" \"example.net\"))";

}  // namespace

TEST_CASE("simple message: RFC 9051 APPEND example", "[mime]") {
    std::string msg = fixture("simple.eml");
    Part root = parse_message(msg);
    CHECK(envelope(root, msg) == std::string("(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"afternoon meeting\" ") + kFred + " " +
                                     kFred + " " + kFred +
                                     " ((NIL NIL \"mooch\" \"owatagu.siam.edu.example\")) NIL NIL NIL "
                                     "\"<B27397-0100000@Blurdybloop.example>\")");
    CHECK(bodystructure(root, msg, true) == "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1 NIL NIL NIL NIL)");
    CHECK(bodystructure(root, msg, false) == "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1)");
    CHECK(crlf_size(msg) == msg.size() + 9);
    CHECK(section(msg, root, "1") == "Hello Joe, do you think we can meet at 3:30 tomorrow?\n");
    CHECK(section(msg, root, "TEXT") == section(msg, root, "1"));
    CHECK(section(msg, root, "HEADER").substr(0, 5) == "Date:");
    CHECK(section(msg, root, "HEADER").size() == msg.find("Hello"));
    CHECK(section(msg, root, "HEADER.FIELDS (SUBJECT to)") ==
          "Subject: afternoon meeting\r\nTo: mooch@owatagu.siam.edu.example\r\n\r\n");
    CHECK(section(msg, root, "").size() == msg.size());
}

TEST_CASE("nested multipart with message/rfc822 and RFC 2231 attachment", "[mime]") {
    std::string msg = fixture("nested.eml");
    Part root = parse_message(msg);
    std::string andre = "((\"=?UTF-8?Q?Andr=C3=A9_Pirard?=\" NIL \"andre\" \"example.org\"))";
    CHECK(envelope(root, msg) ==
          "(\"Tue, 1 Jul 2003 10:52:37 +0200\" \"=?ISO-8859-1?Q?Caf=E9?= report\" " + andre + " " + andre + " " + andre +
              " ((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")(\"Mary Smith\" NIL \"mary\" \"x.test\"))"
              " ((NIL NIL \"Undisclosed recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL \"<5678.21-Nov-1997@example.com>\")");
    std::string inner_env = std::string("(NIL \"inner\" ") + kInner + " " + kInner + " " + kInner + " NIL NIL NIL NIL NIL)";
    std::string expected =
        "((\"TEXT\" \"PLAIN\" (\"charset\" \"utf-8\") NIL NIL \"8BIT\" 10 1 NIL NIL NIL NIL)"
        "((\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"QUOTED-PRINTABLE\" 26 2 NIL NIL NIL NIL)"
        "(\"TEXT\" \"HTML\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 9 1 NIL NIL NIL NIL)"
        " \"ALTERNATIVE\" (\"boundary\" \"inner\") NIL NIL NIL)"
        "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 151 " + inner_env +
        " ((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 10 1 NIL NIL NIL NIL) \"MIXED\" (\"boundary\" \"x\") NIL NIL NIL)"
        " 9 NIL NIL NIL NIL)"
        "(\"APPLICATION\" \"PDF\" (\"name*\" \"UTF-8''%E2%82%AC%20rates.pdf\") NIL NIL \"BASE64\" 12 NIL"
        " (\"ATTACHMENT\" (\"filename*\" \"UTF-8''%E2%82%AC%20rates.pdf\")) (\"en\" \"de\") NIL)"
        " \"MIXED\" (\"boundary\" \"outer\") NIL NIL NIL)";
    CHECK(bodystructure(root, msg, true) == expected);
    CHECK(bodystructure(root, msg, false) ==
          "((\"TEXT\" \"PLAIN\" (\"charset\" \"utf-8\") NIL NIL \"8BIT\" 10 1)"
          "((\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"QUOTED-PRINTABLE\" 26 2)"
          "(\"TEXT\" \"HTML\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 9 1) \"ALTERNATIVE\")"
          "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 151 " + inner_env +
          " ((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 10 1) \"MIXED\") 9)"
          "(\"APPLICATION\" \"PDF\" (\"name*\" \"UTF-8''%E2%82%AC%20rates.pdf\") NIL NIL \"BASE64\" 12) \"MIXED\")");

    CHECK(section(msg, root, "1") == "Caf\xc3\xa9 ol\xc3\xa9");
    CHECK(section(msg, root, "2.1") == "Soft=\n break and =3D sign");
    CHECK(section(msg, root, "2.2.MIME") == "Content-Type: text/html; charset=us-ascii\n\n");
    CHECK(section(msg, root, "3.HEADER") ==
          "From: Inner Sender <inner@example.net>\nSubject: inner\nContent-Type: multipart/mixed; boundary=x\n\n");
    CHECK(section(msg, root, "3.1") == "inner text");
    CHECK(section(msg, root, "3.1.MIME") == "Content-Type: text/plain\n\n");
    CHECK(section(msg, root, "3.TEXT") == "--x\nContent-Type: text/plain\n\ninner text\n--x--");
    CHECK(section(msg, root, "3").substr(0, 5) == "From:");
    CHECK(section(msg, root, "4") == "JVBERi0xLjQK");
    CHECK(section(msg, root, "4.MIME").substr(0, 30) == "Content-Type: application/pdf;");
    CHECK(section(msg, root, "TEXT").substr(0, 21) == "This is the preamble.");
    CHECK(section(msg, root, "HEADER.FIELDS (Subject)") == "Subject: =?ISO-8859-1?Q?Caf=E9?= report\r\n\r\n");
    CHECK(section(msg, root, "HEADER.FIELDS.NOT (From To Cc Subject Date Message-ID MIME-Version)") ==
          "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n");
    for (const char* bad : {"5", "1.2", "2.3", "1.HEADER", "0", "1.", "FOO", "HEADER.FIELDS ()", "MIME"}) {
        auto s = parse_section(bad);
        if (s) CHECK_FALSE(resolve_section(root, msg, *s).ok());
    }

    auto sec = resolve_section(root, msg, *parse_section("4"));
    REQUIRE(sec.ok());
    auto bin = decode_transfer(msg.substr(sec->begin, sec->end - sec->begin), sec->part->encoding);
    REQUIRE(bin.ok());
    CHECK(*bin == "%PDF-1.4\n");
    CHECK_FALSE(decode_transfer("x", "x-uuencode").ok());

    CHECK(header_contains(root, msg, "subject", TextMatcher("CAF\xc3\x89 rep")));
    CHECK(header_contains(root, msg, "from", TextMatcher("andr\xc3\xa9")));
    CHECK_FALSE(header_contains(root, msg, "to", TextMatcher("andre")));
    CHECK(header_block_contains("Subject: =?UTF-8?B?w4lURQ==?=\nFrom: x\n", "SUBJECT", TextMatcher("\xc3\xa9te")));  // "\xc3\x89TE" folded
    CHECK_FALSE(header_block_contains("Subject: summer\n", "from", TextMatcher("summer")));
    CHECK(body_contains(root, msg, TextMatcher("OL\xc3\x89")));
    CHECK(body_contains(root, msg, TextMatcher("break and = sign")));
    CHECK(body_contains(root, msg, TextMatcher("inner text")));
    CHECK_FALSE(body_contains(root, msg, TextMatcher("JVBER")));  // not text
    CHECK_FALSE(body_contains(root, msg, TextMatcher("Message-ID")));
    CHECK(text_contains(root, msg, TextMatcher("message-id: <5678")));
}

TEST_CASE("malformed message: no close delimiter, unusable Content-Type", "[mime]") {
    std::string msg = fixture("malformed.eml");
    Part root = parse_message(msg);
    CHECK(bodystructure(root, msg, true) ==
          "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 8 1 NIL NIL NIL NIL)"
          "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 1 NIL NIL NIL NIL)"
          " \"MIXED\" (\"boundary\" \"b\") NIL NIL NIL)");
    CHECK(envelope(root, msg) ==
          "(NIL \"broken\" ((NIL NIL \"unterminated <a@b\" \"\")) ((NIL NIL \"unterminated <a@b\" \"\"))"
          " ((NIL NIL \"unterminated <a@b\" \"\")) NIL NIL NIL NIL NIL)");
}

TEST_CASE("hostile structures", "[mime]") {
    // Only a header, no blank line and no body.
    std::string h = "Subject: x";
    Part p = parse_message(h);
    CHECK(bodystructure(p, h, true) == "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL)");
    CHECK(envelope(p, h) == "(NIL \"x\" NIL NIL NIL NIL NIL NIL NIL NIL)");
    // Multipart without any delimiter: one empty part.
    std::string m = "Content-Type: multipart/mixed; boundary=q\n\nno parts here\n";
    Part mp = parse_message(m);
    CHECK(bodystructure(mp, m, false) == "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0) \"MIXED\")");
    // Deep nesting stops at kMaxDepth without recursion trouble.
    std::string deep;
    for (int i = 0; i < 200; ++i) deep += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\n\n--b" + std::to_string(i) + "\n";
    Part d = parse_message(deep);
    int depth = 0;
    for (const Part* q = &d; !q->children.empty(); q = &q->children[0]) ++depth;
    CHECK(depth <= kMaxDepth + 1);
    CHECK_FALSE(bodystructure(d, deep, true).empty());
    // 8-bit and CRLF in strings become literals.
    std::string raw = "Subject: caf\xc3\xa9\n\n";
    Part r = parse_message(raw);
    CHECK(envelope(r, raw) == "(NIL {5}\r\ncaf\xc3\xa9 NIL NIL NIL NIL NIL NIL NIL NIL)");
    // Digest parts default to message/rfc822.
    std::string dg = "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: in\n\nhi\n--d--\n";
    Part dp = parse_message(dg);
    REQUIRE(dp.children.size() == 1);
    CHECK(dp.children[0].is_message());
    REQUIRE(dp.children[0].children.size() == 1);
    CHECK(envelope(dp.children[0].children[0], dg) == "(NIL \"in\" NIL NIL NIL NIL NIL NIL NIL NIL)");
}

TEST_CASE("CRLF conversion and partial slices", "[mime]") {
    std::string out;
    append_crlf(out, "a\nb\r\nc");
    CHECK(out == "a\r\nb\r\nc");
    CHECK(crlf_size("a\nb\r\nc\n") == 9);
    CHECK(crlf_slice("ab\ncd\n", 1, 4) == "b\r\nc");
    CHECK(crlf_slice("ab\ncd\n", 3, 10) == "\ncd\r\n");
    CHECK(crlf_slice("ab\ncd\n", 100, 5) == "");
    CHECK(crlf_slice("ab\ncd\n", 0, 0) == "");
    std::string big;
    for (int i = 0; i < 1000; ++i) big += "line " + std::to_string(i) + "\n";
    std::string full;
    append_crlf(full, big);
    CHECK(crlf_slice(big, 1234, 567) == full.substr(1234, 567));
}
