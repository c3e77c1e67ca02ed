// Unit tests for lib/imap: the grammar building blocks, command framing
// with literal admission, sequence sets, modified UTF-7 and the response
// writer (valid, boundary and hostile input).
#include <catch2/catch.hpp>

#include "lib/imap/mutf7.hpp"
#include "lib/imap/parser.hpp"
#include "lib/imap/reader.hpp"
#include "lib/imap/response.hpp"
#include "lib/imap/sequence.hpp"

using namespace tern::imap;
using Event = CommandReader::Event;

namespace {

// Feeds all of `in` and collects the events (NeedMore excluded).
std::vector<Event> feed_all(CommandReader& r, std::string_view in, std::vector<std::string>* commands = nullptr) {
    std::vector<Event> events;
    size_t off = 0;
    for (int guard = 0; guard < 1000; ++guard) {
        size_t used = 0;
        Event e = r.feed(in.substr(off), used);
        off += used;
        if (e == Event::NeedMore) break;
        events.push_back(e);
        if ((e == Event::Command || e == Event::RawLine) && commands) commands->push_back(r.command());
        if (e == Event::Fatal) break;
    }
    return events;
}

}  // namespace

TEST_CASE("imap parser: tags, atoms, astrings", "[imap]") {
    Parser p("a001 LOGIN \"us\\\"er\" pass]word");
    CHECK(*p.tag() == "a001");
    CHECK(p.sp());
    CHECK(*p.keyword() == "LOGIN");
    CHECK(p.sp());
    CHECK(*p.astring() == "us\"er");
    CHECK(p.sp());
    CHECK(*p.astring() == "pass]word");
    CHECK(p.end());

    Parser plus("+tag");
    CHECK_FALSE(plus.tag());
    CHECK(plus.error().find("tag") != std::string::npos);

    Parser bad_escape("\"a\\b\"");
    CHECK_FALSE(bad_escape.astring());
    Parser unterminated("\"abc");
    CHECK_FALSE(unterminated.astring());
    CHECK(unterminated.error().find("closing quote") != std::string::npos);
    Parser utf8("\"Entw\xc3\xbcrfe\"");
    CHECK(*utf8.astring() == "Entw\xc3\xbcrfe");
}

TEST_CASE("imap parser: literals", "[imap]") {
    Parser p("{5}\r\nhello {3+}\r\nabc");
    CHECK(*p.astring() == "hello");
    CHECK(p.sp());
    CHECK(*p.string() == "abc");
    CHECK(p.end());

    Parser nul(std::string_view("{3}\r\na\0b", 9));
    CHECK_FALSE(nul.string());
    Parser nul8(std::string_view("~{3}\r\na\0b", 10));
    CHECK(nul8.string(true)->size() == 3);
    Parser no8("~{3}\r\nabc");
    CHECK_FALSE(no8.string());
    Parser short_data("{10}\r\nabc");
    CHECK_FALSE(short_data.string());
    Parser huge("{99999999999999999999}\r\n");
    CHECK_FALSE(huge.string());
    Parser no_crlf("{3}abc");
    CHECK_FALSE(no_crlf.string());
}

TEST_CASE("imap parser: numbers, flags, nstring", "[imap]") {
    Parser n("4294967295 4294967296 0");
    CHECK(*n.number() == 4294967295u);
    CHECK(n.sp());
    CHECK_FALSE(n.number());
    Parser z("0");
    CHECK_FALSE(z.nz_number());
    Parser f("(\\Seen $Label1 \\Deleted)");
    auto flags = f.flag_list();
    REQUIRE(flags);
    CHECK(*flags == std::vector<std::string>{"\\Seen", "$Label1", "\\Deleted"});
    Parser unbalanced("(\\Seen");
    CHECK_FALSE(unbalanced.flag_list());
    Parser nil("NIL \"x\"");
    auto a = nil.nstring();
    REQUIRE(a);
    CHECK_FALSE(a->has_value());
    nil.sp();
    CHECK(**nil.nstring() == "x");
}

TEST_CASE("imap parser: dates", "[imap]") {
    Parser d("1-Feb-1994");
    CHECK(*d.date() == 760060800);
    Parser q("\"29-Feb-2024\"");
    CHECK(q.date());
    Parser bad("29-Feb-2023");
    CHECK_FALSE(bad.date());
    Parser month("1-Foo-2020");
    CHECK_FALSE(month.date());

    Parser dt("\"17-Jul-1996 02:44:25 -0700\"");
    auto v = dt.date_time();
    REQUIRE(v);
    CHECK(v->utc == 837596665);
    CHECK(v->zone_minutes == -420);
    CHECK(format_date_time(v->utc, v->zone_minutes) == "17-Jul-1996 02:44:25 -0700");
    Parser sp_day("\" 7-Jul-1996 02:44:25 +0000\"");
    CHECK(sp_day.date_time());
    Parser bad_time("\"17-Jul-1996 25:44:25 -0700\"");
    CHECK_FALSE(bad_time.date_time());
}

TEST_CASE("imap reader: lines and literals", "[imap]") {
    CommandReader r({});
    std::vector<std::string> cmds;
    auto ev = feed_all(r, "a1 NOOP\r\n\r\na2 LOGIN {4}\r\n", &cmds);
    REQUIRE(ev == std::vector<Event>{Event::Command, Event::Continue});
    CHECK(cmds[0] == "a1 NOOP");
    ev = feed_all(r, "user {4+}\r\npass\r\n", &cmds);
    REQUIRE(ev == std::vector<Event>{Event::Command});
    CHECK(cmds[1] == "a2 LOGIN {4}\r\nuser {4+}\r\npass");
    Parser p(cmds[1]);
    p.tag(); p.sp(); p.keyword(); p.sp();
    CHECK(*p.astring() == "user");
    p.sp();
    CHECK(*p.astring() == "pass");
    CHECK(p.end());
}

TEST_CASE("imap reader: literal limits are decided before the data", "[imap]") {
    ReaderLimits limits;
    limits.command_max = 1000;
    limits.append_max = 5000;
    limits.append_total_max = 8000;
    CommandReader r(limits);
    // A synchronizing literal over the limit: refused, no "+", command gone.
    auto ev = feed_all(r, "t1 LOGIN {1000000000000}\r\n");
    REQUIRE(ev == std::vector<Event>{Event::TooBig});
    CHECK(r.tag() == "t1");
    CHECK_FALSE(r.is_append());
    CHECK(r.refused_size() == 1000000000000ull);
    std::vector<std::string> cmds;
    CHECK(feed_all(r, "t2 NOOP\r\n", &cmds) == std::vector<Event>{Event::Command});
    CHECK(cmds[0] == "t2 NOOP");
    // APPEND has its own, larger limit.
    ev = feed_all(r, "t3 APPEND INBOX {4000}\r\n");
    CHECK(ev == std::vector<Event>{Event::Continue});
    CHECK(r.is_append());
    std::string data(4000, 'x');
    CHECK(feed_all(r, data + " {5000}\r\n") == std::vector<Event>{Event::TooBig});  // total over 8000
    // A non-synchronizing literal above 4096 bytes (LITERAL-) is fatal.
    CommandReader r2(limits);
    ev = feed_all(r2, "t4 APPEND INBOX {4097+}\r\n");
    CHECK(ev == std::vector<Event>{Event::Fatal});
    CHECK(r2.error().find("4096") != std::string::npos);
}

TEST_CASE("imap reader: overlong lines", "[imap]") {
    ReaderLimits limits;
    limits.line_max = 100;
    CommandReader r(limits);
    std::string longline = "x1 SEARCH " + std::string(300, 'A');
    auto ev = feed_all(r, longline);
    REQUIRE(ev == std::vector<Event>{Event::LineTooLong});
    CHECK(r.tag() == "x1");
    std::vector<std::string> cmds;
    ev = feed_all(r, std::string(200, 'B') + "\r\nx2 NOOP\r\n", &cmds);
    REQUIRE(ev == std::vector<Event>{Event::Command});
    CHECK(cmds[0] == "x2 NOOP");
    // A complete line over the limit in one piece.
    CommandReader r2(limits);
    ev = feed_all(r2, "x3 " + std::string(150, 'C') + "\r\nx4 NOOP\r\n", &cmds);
    CHECK(ev == std::vector<Event>{Event::LineTooLong, Event::Command});
    // An overlong line that announces a non-synchronizing literal: stream lost.
    CommandReader r3(limits);
    ev = feed_all(r3, "x5 " + std::string(150, 'D') + " {10+}\r\n0123456789\r\n");
    CHECK(ev == std::vector<Event>{Event::Fatal});
}

TEST_CASE("imap reader: raw lines for SASL and IDLE", "[imap]") {
    CommandReader r({});
    std::vector<std::string> cmds;
    r.expect_raw_line();
    CHECK(feed_all(r, "dXNlcg== {5}\r\na NOOP\r\n", &cmds) == std::vector<Event>{Event::RawLine, Event::Command});
    CHECK(cmds[0] == "dXNlcg== {5}");
    CHECK(cmds[1] == "a NOOP");
    CHECK_FALSE(r.mid_command());
}

TEST_CASE("imap sequence sets", "[imap]") {
    Parser p("1:3,7,9:*,2");
    auto s = SequenceSet::parse(p);
    REQUIRE(s);
    CHECK(p.end());
    auto r = s->resolve(12);
    CHECK(r == std::vector<Range>{{1, 3}, {7, 7}, {9, 12}});
    CHECK(s->contains(12, 12));
    CHECK_FALSE(s->contains(5, 12));
    Parser rev("5:2,*");
    CHECK(SequenceSet::parse(rev)->resolve(3) == std::vector<Range>{{2, 5}});
    Parser beyond("20:*");
    CHECK(SequenceSet::parse(beyond)->resolve(10) == std::vector<Range>{{10, 20}});
    Parser star("*");
    CHECK(SequenceSet::parse(star)->resolve(0).empty());
    Parser dollar("$");
    CHECK(SequenceSet::parse(dollar)->saved());
    for (const char* bad : {"0", "1:", ",1", "1,,2", "a", "1:0"}) {
        Parser b(bad);
        auto x = SequenceSet::parse(b);
        CHECK((!x || !b.end()));
    }
    CHECK(format_sequence_set({1, 2, 3, 5, 7, 8}) == "1:3,5,7:8");
    CHECK(format_sequence_set({}) == "");
}

TEST_CASE("imap modified UTF-7", "[imap]") {
    CHECK(*mutf7_encode("Entw\xc3\xbcrfe") == "Entw&APw-rfe");
    CHECK(*mutf7_decode("Entw&APw-rfe") == "Entw\xc3\xbcrfe");
    CHECK(*mutf7_encode("A&B") == "A&-B");
    CHECK(*mutf7_decode("A&-B") == "A&B");
    // RFC 3501 5.1.3 example: "~peter/mail/台北/日本語"
    CHECK(*mutf7_encode("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e") ==
          "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
    CHECK(*mutf7_decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-") ==
          "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
    // Astral plane via surrogates.
    std::string emoji = "\xf0\x9f\x98\x80";
    CHECK(*mutf7_decode(*mutf7_encode(emoji)) == emoji);
    for (const char* bad : {"&", "&AGE-", "&U,BTFw", "&Jjo!-", "&2D0-", "&U,BTFw-&ZeVnLIqe-", "\xc3\xbc"})
        CHECK_FALSE(mutf7_decode(bad));
    CHECK_FALSE(mutf7_encode("\xff"));
    CHECK_FALSE(valid_utf8("\xc0\x80"));
    CHECK(valid_utf8("ok \xe2\x82\xac"));
}

TEST_CASE("imap response writer", "[imap]") {
    std::string out;
    append_string(out, "a \"b\" \\c");
    CHECK(out == "\"a \\\"b\\\" \\\\c\"");
    out.clear();
    append_string(out, "line\r\nbreak");
    CHECK(out == "{11}\r\nline\r\nbreak");
    out.clear();
    append_string(out, "\xc3\xbc");
    CHECK(out == "{2}\r\n\xc3\xbc");
    out.clear();
    append_string(out, "\xc3\xbc", true);
    CHECK(out == "\"\xc3\xbc\"");
    out.clear();
    append_astring(out, "INBOX");
    append_astring(out, "");
    append_astring(out, "a b");
    CHECK(out == "INBOX\"\"\"a b\"");
    out.clear();
    append_nstring(out, std::nullopt);
    CHECK(out == "NIL");
    CHECK(status_line("a1", "NO", "TOOBIG", "too\r\nbig") == "a1 NO [TOOBIG] too  big\r\n");
}
