// Unit tests for lib/smtp: command lines, MAIL/RCPT parameters, replies,
// and the DATA/BDAT decoders (including SMTP smuggling attempts).
#include <catch2/catch.hpp>

#include "lib/smtp/command.hpp"
#include "lib/smtp/data.hpp"
#include "lib/smtp/reply.hpp"

using namespace tern::smtp;

namespace {
ParameterPolicy all_on() { return ParameterPolicy{}; }

// Feeds `in` in pieces of `step` bytes; returns decoded text and consumed count.
std::pair<std::string, size_t> decode_data(std::string_view in, size_t step, DataDecoder& d) {
    std::string out;
    size_t used = 0;
    while (used < in.size() && !d.done()) {
        std::string_view piece = in.substr(used, step);
        used += d.feed(piece, out);
    }
    return {out, used};
}
}  // namespace

TEST_CASE("smtp: command verbs", "[smtp]") {
    auto c = parse_command("ehlo client.example");
    CHECK(c.verb == Verb::Ehlo);
    CHECK(c.args == "client.example");
    CHECK(parse_command("MAIL FROM:<a@b.example>").verb == Verb::Mail);
    CHECK(parse_command("StartTLS").verb == Verb::Starttls);
    CHECK(parse_command("QUIT  ").args.empty());
    CHECK(parse_command("").verb == Verb::Unknown);
    CHECK(parse_command("MAILX FROM:<>").verb == Verb::Unknown);
    CHECK(parse_command("BDAT 100 LAST").args == "100 LAST");
    CHECK(verb_key(Verb::Rcpt) == "rcpt");
}

TEST_CASE("smtp: MAIL FROM parameters", "[smtp]") {
    auto m = parse_mail_from("FROM:<a@b.example> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1 AUTH=<>", all_on());
    REQUIRE(m);
    CHECK(m->sender.address == "a@b.example");
    CHECK(*m->size == 1000);
    CHECK(m->body == BodyType::EightBitMime);
    CHECK(m->ret == "HDRS");
    CHECK(m->envid == "QQ+1");
    CHECK(m->auth == "<>");
    auto n = parse_mail_from("FROM:<>", all_on());
    REQUIRE(n);
    CHECK(n->sender.null());
    CHECK_FALSE(n->size);
    auto sp = parse_mail_from("from: <a@b.example>", all_on());
    REQUIRE(sp);  // space after the colon is tolerated
}

TEST_CASE("smtp: MAIL FROM errors carry replies", "[smtp]") {
    auto unknown = parse_mail_from("FROM:<a@b.example> FOO=BAR", all_on());
    REQUIRE_FALSE(unknown);
    CHECK(unknown.message().rfind("555 5.5.4", 0) == 0);
    CHECK(parse_mail_from("FROM:<a@b.example> SIZE=abc", all_on()).message().rfind("501 5.5.4", 0) == 0);
    CHECK_FALSE(parse_mail_from("FROM:<a@b.example> SIZE=1 SIZE=2", all_on()));
    CHECK_FALSE(parse_mail_from("FROM:<a@b.example> BODY=9BIT", all_on()));
    CHECK_FALSE(parse_mail_from("FROM:<a@b.example> RET=ALL", all_on()));
    CHECK_FALSE(parse_mail_from("FROM:<a@b.example> ENVID=+zz", all_on()));
    CHECK_FALSE(parse_mail_from("FROM:<a@b.example>SIZE=1", all_on()));
    CHECK_FALSE(parse_mail_from("TO:<a@b.example>", all_on()));
    CHECK_FALSE(parse_mail_from("FROM:", all_on()));
    CHECK_FALSE(parse_mail_from("FROM:<a@b.example> SMTPUTF8=yes", all_on()));
    auto bad = parse_mail_from("FROM:<a b@c>", all_on());
    REQUIRE_FALSE(bad);
    CHECK(bad.message().rfind("501 5.1.7", 0) == 0);
    ParameterPolicy no_dsn;
    no_dsn.dsn = false;
    CHECK(parse_mail_from("FROM:<a@b.example> RET=FULL", no_dsn).message().rfind("555", 0) == 0);
}

TEST_CASE("smtp: SIZE boundaries", "[smtp]") {
    auto huge = parse_mail_from("FROM:<> SIZE=99999999999999999999999999", all_on());
    REQUIRE(huge);
    CHECK(*huge->size == UINT64_MAX);  // saturates: exceeds every limit
    auto zero = parse_mail_from("FROM:<> SIZE=0", all_on());
    REQUIRE(zero);
    CHECK(*zero->size == 0);
}

TEST_CASE("smtp: SMTPUTF8 widens the sender path", "[smtp]") {
    std::string utf8_from = "FROM:<j\xc3\xb6rg@example.org>";
    CHECK_FALSE(parse_mail_from(utf8_from, all_on()));
    auto m = parse_mail_from(utf8_from + " SMTPUTF8", all_on());
    REQUIRE(m);
    CHECK(m->smtputf8);
    CHECK(m->sender.utf8);
    ParameterPolicy off;
    off.smtputf8 = false;
    CHECK_FALSE(parse_mail_from(utf8_from + " SMTPUTF8", off));
}

TEST_CASE("smtp: RCPT TO parameters", "[smtp]") {
    auto r = parse_rcpt_to("TO:<u@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;u+40example.org", all_on(), false);
    REQUIRE(r);
    CHECK(r->recipient.address == "u@example.org");
    CHECK(r->notify == 3);
    CHECK(r->orcpt == "rfc822;u@example.org");
    auto never = parse_rcpt_to("TO:<u@example.org> NOTIFY=NEVER", all_on(), false);
    REQUIRE(never);
    CHECK(never->notify == 8);
    CHECK_FALSE(parse_rcpt_to("TO:<u@example.org> NOTIFY=NEVER,DELAY", all_on(), false));
    CHECK_FALSE(parse_rcpt_to("TO:<u@example.org> NOTIFY=", all_on(), false));
    CHECK_FALSE(parse_rcpt_to("TO:<u@example.org> ORCPT=rfc822", all_on(), false));
    CHECK_FALSE(parse_rcpt_to("TO:<>", all_on(), false));
    auto pm = parse_rcpt_to("TO:<postmaster>", all_on(), false);
    REQUIRE(pm);
    CHECK(pm->recipient.address == "postmaster");
    std::string utf8_to = "TO:<\xc3\xa9t\xc3\xa9@example.org>";
    CHECK_FALSE(parse_rcpt_to(utf8_to, all_on(), false));
    CHECK(parse_rcpt_to(utf8_to, all_on(), true));
}

TEST_CASE("smtp: BDAT arguments", "[smtp]") {
    auto b = parse_bdat("1024 LAST");
    REQUIRE(b);
    CHECK(b->size == 1024);
    CHECK(b->last);
    auto c = parse_bdat("0");
    REQUIRE(c);
    CHECK_FALSE(c->last);
    CHECK_FALSE(parse_bdat(""));
    CHECK_FALSE(parse_bdat("-1"));
    CHECK_FALSE(parse_bdat("10 FIRST"));
    CHECK_FALSE(parse_bdat("99999999999999999999"));
}

TEST_CASE("smtp: xtext", "[smtp]") {
    CHECK(*xtext_decode("a+2Bb+3D") == "a+b=");
    CHECK_FALSE(xtext_decode("a+2"));
    CHECK_FALSE(xtext_decode("a+2b"));  // lower-case hex is not xtext
    CHECK_FALSE(xtext_decode("a b"));
    CHECK(xtext_encode("a+b=c d") == "a+2Bb+3Dc+20d");
    CHECK(*xtext_decode(xtext_encode("\x01\xff<>")) == "\x01\xff<>");
}

TEST_CASE("smtp: replies", "[smtp]") {
    CHECK(format_reply(250, "2.0.0", "Ok") == "250 2.0.0 Ok\r\n");
    CHECK(format_reply(220, "", "ready") == "220 ready\r\n");
    CHECK(format_reply(550, "5.1.1", "bad\r\nMAIL FROM:<x>") == "550 5.1.1 bad??MAIL FROM:<x>\r\n");
    CHECK(format_multiline(250, "", {"mx.example", "PIPELINING", "SIZE 100"}) ==
          "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
    ReplyLine line;
    REQUIRE(parse_reply_line("250-PIPELINING", line));
    CHECK(line.code == 250);
    CHECK_FALSE(line.last);
    CHECK(line.text == "PIPELINING");
    CHECK_FALSE(parse_reply_line("2x0 hi", line));
    CHECK_FALSE(parse_reply_line("250_hi", line));
    CHECK_FALSE(parse_reply_line("650 hi", line));
}

TEST_CASE("smtp: DATA decoding", "[smtp]") {
    std::string in = "Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n";
    for (size_t step : {1, 2, 3, 7, 1000}) {
        DataDecoder d;
        auto [out, used] = decode_data(in, step, d);
        INFO(step);
        CHECK(d.done());
        CHECK(d.error() == DataError::None);
        CHECK(out == "Subject: hi\n\n.dot\n");
        CHECK(in.substr(used) == "QUIT\r\n");
        CHECK(d.size() == out.size());
    }
}

TEST_CASE("smtp: DATA empty message and dot lines", "[smtp]") {
    DataDecoder d;
    std::string out;
    CHECK(d.feed(".\r\n", out) == 3);
    CHECK(d.done());
    CHECK(out.empty());
    DataDecoder e;
    auto [o2, u2] = decode_data("a\r\n.x\r\n...\r\n.\r\n", 5, e);
    CHECK(e.done());
    CHECK(o2 == "a\nx\n..\n");
}

TEST_CASE("smtp: DATA smuggling variants are refused", "[smtp]") {
    struct Case {
        const char* input;
        DataError error;
    };
    Case cases[] = {
        {"a\n.\nMAIL FROM:<x@y>\r\n.\r\n", DataError::BareLf},
        {"a\r\n.\nMAIL FROM:<x@y>\r\n.\r\n", DataError::BareLf},
        {"a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", DataError::BareLf},
        {"a\r.\rMAIL FROM:<x@y>\r\n.\r\n", DataError::BareCr},
        {"a\r\n.\rMAIL FROM:<x@y>\r\n.\r\n", DataError::BareCr},
        {"a\r\n.\r\r\nMAIL\r\n.\r\n", DataError::BareCr},
    };
    for (const auto& c : cases) {
        for (size_t step : {1, 4, 1000}) {
            INFO(c.input << " step " << step);
            DataDecoder d;
            std::string in = c.input;
            auto [out, used] = decode_data(in, step, d);
            CHECK(d.done());
            CHECK(d.error() == c.error);
            // The smuggled command stays inside the refused message.
            CHECK(used == in.size());
        }
    }
}

TEST_CASE("smtp: DATA limits", "[smtp]") {
    DataDecoder d(DataLimits{10, 0});
    std::string out;
    std::string in = "0123456789\r\nmore\r\n.\r\n";
    CHECK(d.feed(in, out) == in.size());
    CHECK(d.done());
    CHECK(d.error() == DataError::TooBig);
    CHECK(d.size() == 16);
    CHECK(out.size() <= 10);
    DataDecoder exact(DataLimits{4, 0});
    std::string o2;
    exact.feed("abc\r\n.\r\n", o2);
    CHECK(exact.error() == DataError::None);  // "abc\n" is exactly 4
    DataDecoder line(DataLimits{0, 3});
    std::string o3;
    line.feed("abc\r\n..bc\r\nabcd\r\n.\r\n", o3);
    CHECK(line.done());
    CHECK(line.error() == DataError::LineTooLong);
    DataDecoder ok(DataLimits{0, 3});
    std::string o4;
    ok.feed("abc\r\n..bc\r\n.\r\n", o4);
    CHECK(ok.error() == DataError::None);
}

TEST_CASE("smtp: DATA needs the full terminator", "[smtp]") {
    DataDecoder d;
    std::string out;
    d.feed("a\r\n.", out);
    CHECK_FALSE(d.done());
    d.feed("\r", out);
    CHECK_FALSE(d.done());
    CHECK(d.feed("\n", out) == 1);
    CHECK(d.done());
    CHECK(out == "a\n");
}

TEST_CASE("smtp: BDAT chunk decoding", "[smtp]") {
    ChunkDecoder c;
    std::string out;
    c.feed("Subject: x\r", out);
    c.feed("\n\r\nbody.\r\n.\r\n", out);
    c.finish();
    CHECK(c.error() == DataError::None);
    CHECK(out == "Subject: x\n\nbody.\n.\n");
    ChunkDecoder lf;
    std::string o2;
    lf.feed("a\nb\r\n", o2);
    CHECK(lf.error() == DataError::BareLf);
    ChunkDecoder cr;
    std::string o3;
    cr.feed("a\rb\r\n", o3);
    CHECK(cr.error() == DataError::BareCr);
    ChunkDecoder tail;
    std::string o4;
    tail.feed("a\r", o4);
    tail.finish();
    CHECK(tail.error() == DataError::BareCr);
    ChunkDecoder big(DataLimits{3, 0});
    std::string o5;
    big.feed("abcd", o5);
    CHECK(big.error() == DataError::TooBig);
}
