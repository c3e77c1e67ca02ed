// Unit tests for the SMTP client pieces of lib/smtp: reply reading (multi-
// line, enhanced codes, hostile servers), EHLO keywords, CRLF and
// dot-stuffing on output, and the 8BITMIME downgrade to quoted-printable.
#include <catch2/catch.hpp>

#include "lib/smtp/client_reply.hpp"
#include "lib/smtp/outbound.hpp"

using namespace tern::smtp;

namespace {
Reply read_all(std::initializer_list<const char*> lines) {
    ReplyReader r;
    for (const char* l : lines) {
        auto got = r.feed(l);
        REQUIRE(got);
        if (*got) return **got;
    }
    FAIL("no complete reply");
    return {};
}
}  // namespace

TEST_CASE("client replies: single and multi-line", "[smtp][client]") {
    Reply r = read_all({"250 2.1.5 Ok"});
    CHECK(r.code == 250);
    CHECK(r.enhanced == "2.1.5");
    CHECK(r.text() == "250 2.1.5 Ok");
    CHECK(r.dsn() == "2.1.5");
    Reply m = read_all({"550-5.7.1 first", "550-5.7.1 second", "550 5.7.1 third"});
    CHECK(m.lines.size() == 3);
    CHECK(m.text() == "550 5.7.1 first 5.7.1 second 5.7.1 third");
    Reply plain = read_all({"451 try later"});
    CHECK(plain.enhanced.empty());
    CHECK(plain.dsn() == "4.0.0");
    CHECK(plain.transient());
    // An enhanced code whose class differs from the reply's is not one.
    CHECK(read_all({"550 2.0.0 odd"}).enhanced.empty());
    CHECK(read_all({"250"}).lines.size() == 1);
}

TEST_CASE("client replies: hostile input", "[smtp][client]") {
    ReplyReader r;
    CHECK_FALSE(r.feed("hello"));
    CHECK_FALSE(r.feed("99 x"));
    CHECK_FALSE(r.feed("650 x"));
    CHECK_FALSE(r.feed("250x"));
    ReplyReader changed;
    REQUIRE(changed.feed("250-a"));
    CHECK_FALSE(changed.feed("550 b"));
    ReplyReader endless;
    bool failed = false;
    for (int i = 0; i < 200 && !failed; ++i) failed = !endless.feed("250-more");
    CHECK(failed);
}

TEST_CASE("client replies: EHLO keywords", "[smtp][client]") {
    Reply r = read_all({"250-mx.example.org hello", "250-PIPELINING", "250-SIZE 1000", "250-8bitmime", "250-SMTPUTF8",
                        "250-DSN", "250-STARTTLS", "250-AUTH PLAIN LOGIN", "250 ENHANCEDSTATUSCODES"});
    Extensions e = parse_ehlo(r);
    CHECK(e.esmtp);
    CHECK(e.pipelining);
    CHECK(e.size);
    CHECK(e.size_limit == 1000);
    CHECK(e.eightbitmime);
    CHECK(e.smtputf8);
    CHECK(e.dsn);
    CHECK(e.starttls);
    CHECK(e.enhancedstatuscodes);
    CHECK(e.auth == std::vector<std::string>{"PLAIN", "LOGIN"});
    Extensions bare = parse_ehlo(read_all({"250 mx.example.org"}));
    CHECK_FALSE(bare.pipelining);
    CHECK(bare.size_limit == 0);
    CHECK(parse_ehlo(read_all({"250-x", "250 SIZE"})).size_limit == 0);
    CHECK(parse_ehlo(read_all({"250-x", "250 SIZE abc"})).size_limit == 0);
    CHECK_FALSE(parse_ehlo(read_all({"502 no"})).esmtp);
}

TEST_CASE("outbound: CRLF and dot-stuffing across chunks", "[smtp][client]") {
    DataEncoder e;
    std::string out = e.feed("Subject: x\n\n.a\n");
    out += e.feed(".");
    out += e.feed("b\nc.d\n..\n");
    out += e.finish();
    CHECK(out == "Subject: x\r\n\r\n..a\r\n..b\r\nc.d\r\n...\r\n.\r\n");
    DataEncoder unterminated;
    std::string head = unterminated.feed("no newline");
    CHECK(head + unterminated.finish() == "no newline\r\n.\r\n");
    DataEncoder empty;
    CHECK(empty.finish() == ".\r\n");
}

TEST_CASE("outbound: quoted-printable", "[smtp][client]") {
    CHECK(quoted_printable("caf\xc3\xa9 = ok\n") == "caf=C3=A9 =3D ok\n");
    CHECK(quoted_printable("trailing space \n") == "trailing space=20\n");
    std::string long_line(100, 'a');
    std::string qp = quoted_printable(long_line + "\n");
    CHECK(qp.find("=\n") != std::string::npos);
    for (size_t start = 0, nl; (nl = qp.find('\n', start)) != std::string::npos; start = nl + 1) CHECK(nl - start <= 76);
}

TEST_CASE("outbound: 8BITMIME downgrade", "[smtp][client]") {
    std::string simple = "Subject: s\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nh\xc3\xa9\n";
    std::string d = downgrade_8bit(simple);
    CHECK(d.find("Content-Transfer-Encoding: quoted-printable\n\nh=C3=A9\n") != std::string::npos);
    CHECK(d.find("8bit") == std::string::npos);
    CHECK(d.find("MIME-Version: 1.0\n") != std::string::npos);
    CHECK_FALSE(has_8bit(d.substr(d.find("\n\n"))));

    std::string seven = "Subject: s\n\nplain\n";
    CHECK(downgrade_8bit(seven) == seven);

    std::string multi =
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"BB\"\n\npreamble\n--BB\n"
        "Content-Type: text/plain\n\nascii part\n--BB\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n\nt\xc3\xa9st\n--BB\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n--BB--\nepilogue\n";
    std::string dm = downgrade_8bit(multi);
    CHECK(dm.find("ascii part\n--BB\n") != std::string::npos);
    CHECK(dm.find("Content-Transfer-Encoding: quoted-printable\n\nt=C3=A9st\n--BB\n") != std::string::npos);
    CHECK(dm.find("aGVsbG8=\n--BB--\nepilogue\n") != std::string::npos);
    CHECK_FALSE(has_8bit(dm));

    // Hostile structure: no closing boundary, deep nesting, no boundary.
    std::string open = "Content-Type: multipart/mixed; boundary=x\n\n--x\n\n\xff\n";
    (void)downgrade_8bit(open);
    std::string deep;
    for (int i = 0; i < 100; ++i) deep += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\n\n--b" + std::to_string(i) + "\n";
    deep += "\n\xff\n";
    (void)downgrade_8bit(deep);
    CHECK(downgrade_8bit("Content-Type: multipart/mixed\n\n\xff\n") == "Content-Type: multipart/mixed\n\n\xff\n");
}
