// Unit tests for lib/imap's FETCH attribute and SEARCH/SORT/THREAD parsers.
#include <catch2/catch.hpp>

#include "lib/imap/fetch.hpp"
#include "lib/imap/search.hpp"

using namespace tern::imap;
using FK = FetchItem::Kind;
using SK = SearchKey::Kind;

TEST_CASE("imap fetch: macros and simple items", "[imap]") {
    Parser p("FAST");
    auto r = parse_fetch(p);
    REQUIRE(r);
    REQUIRE(r->items.size() == 3);
    CHECK(r->has(FK::Flags));
    CHECK(r->has(FK::Rfc822Size));
    Parser l("(UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE INTERNALDATE MODSEQ)");
    r = parse_fetch(l);
    REQUIRE(r);
    CHECK(r->items.size() == 7);
    CHECK_FALSE(r->sets_seen());
    Parser inlist("(ALL)");
    CHECK_FALSE(parse_fetch(inlist));
    Parser empty("()");
    CHECK_FALSE(parse_fetch(empty));
    Parser unknown("(FLAGS BOGUS)");
    CHECK_FALSE(parse_fetch(unknown));
    CHECK(unknown.error().find("FETCH attribute") != std::string::npos);
}

TEST_CASE("imap fetch: sections and partials", "[imap]") {
    Parser p("(BODY.PEEK[HEADER.FIELDS (From \"Subject\")] BODY[1.2.MIME]<10.20> BODY[] BINARY[2]<0.5> BINARY.SIZE[1])");
    auto r = parse_fetch(p);
    REQUIRE(r);
    REQUIRE(r->items.size() == 5);
    const FetchItem& h = r->items[0];
    CHECK(h.kind == FK::BodySection);
    CHECK(h.peek);
    CHECK(h.section.text == BodySection::Text::HeaderFields);
    CHECK(h.section.fields == std::vector<std::string>{"From", "Subject"});
    CHECK(h.response_name() == "BODY[HEADER.FIELDS (From Subject)]");
    const FetchItem& m = r->items[1];
    CHECK(m.section.part == std::vector<uint32_t>{1, 2});
    CHECK(m.section.text == BodySection::Text::Mime);
    CHECK(*m.section.origin == 10);
    CHECK(m.section.length == 20);
    CHECK(m.response_name() == "BODY[1.2.MIME]<10>");
    CHECK(r->items[2].response_name() == "BODY[]");
    CHECK(r->items[3].response_name() == "BINARY[2]<0>");
    CHECK(r->items[4].response_name() == "BINARY.SIZE[1]");
    CHECK(r->sets_seen());

    for (const char* bad : {"BODY[MIME]", "BODY[1.]", "BODY[0]", "BODY[HEADER.FIELDS ()]", "BODY[TEXT]<1.0>",
                            "BODY[TEXT]<1>", "BINARY[HEADER]", "BODY.PEEK", "BODY[HEADER", "BINARY.SIZE[1]<0.1>"}) {
        Parser b(bad);
        INFO(bad);
        CHECK_FALSE(parse_fetch(b));
    }
}

TEST_CASE("imap fetch: CONDSTORE modifiers", "[imap]") {
    Parser p("(FLAGS) (CHANGEDSINCE 12345 VANISHED)");
    auto r = parse_fetch(p);
    REQUIRE(r);
    CHECK(*r->changed_since == 12345);
    CHECK(r->vanished);
    Parser v("FLAGS (VANISHED)");
    CHECK_FALSE(parse_fetch(v));
    Parser z("FLAGS (CHANGEDSINCE 0)");
    CHECK_FALSE(parse_fetch(z));
}

TEST_CASE("imap search: keys", "[imap]") {
    Parser p("RETURN (MIN COUNT) CHARSET utf-8 OR FROM alice SUBJECT \"hi there\" NOT SEEN 1:5 UID 3:* "
             "SINCE 1-Jan-2024 LARGER 100 HEADER X-Spam yes (DELETED KEYWORD $Junk) MODSEQ \"/flags/\\\\draft\" all 7");
    auto r = parse_search(p);
    REQUIRE(r);
    CHECK(r->ret.given);
    CHECK(r->ret.min);
    CHECK(r->ret.count);
    CHECK_FALSE(r->ret.all);
    CHECK(r->charset == "UTF-8");
    const auto& k = r->key.children;
    REQUIRE(k.size() == 9);
    CHECK(k[0].kind == SK::Or);
    CHECK(k[0].children[0].kind == SK::Header);
    CHECK(k[0].children[0].field == "From");
    CHECK(k[0].children[1].value == "hi there");
    CHECK(k[1].kind == SK::Not);
    CHECK(k[1].children[0].kind == SK::Flag);
    CHECK(k[1].children[0].field == "\\Seen");
    CHECK(k[2].kind == SK::Sequence);
    CHECK(k[3].kind == SK::Uid);
    CHECK(k[4].kind == SK::Since);
    CHECK(k[5].number == 100);
    CHECK(k[6].field == "X-Spam");
    CHECK(k[7].kind == SK::And);
    CHECK(k[7].children[1].field == "$Junk");
    CHECK(k[8].kind == SK::ModSeq);
    CHECK(k[8].number == 7);
    Parser q("RETURN () ALL");
    auto all = parse_search(q);
    REQUIRE(all);
    CHECK(all->ret.all);
}

TEST_CASE("imap search: hostile input", "[imap]") {
    for (const char* bad : {"", "FROM", "(SEEN", "SEEN)", "OR SEEN", "BEFORE 32-Jan-2020", "BOGUS", "UID", "1:0",
                            "RETURN (FOO) ALL", "LARGER -1", "SEEN  UNSEEN"}) {
        Parser b(bad);
        CHECK_FALSE(parse_search(b));
    }
    std::string deep;
    for (int i = 0; i < 200; ++i) deep += "NOT ";
    deep += "ALL";
    Parser d(deep);
    CHECK_FALSE(parse_search(d));
    CHECK(d.error().find("nested") != std::string::npos);
    std::string parens(500, '(');
    Parser pp(parens);
    CHECK_FALSE(parse_search(pp));
}

TEST_CASE("imap sort and thread requests", "[imap]") {
    Parser s("(REVERSE DATE SUBJECT) UTF-8 ALL");
    auto r = parse_sort(s);
    REQUIRE(r);
    REQUIRE(r->keys.size() == 2);
    CHECK(r->keys[0].reverse);
    CHECK(r->keys[0].field == SortKey::Field::Date);
    Parser bad("(REVERSE) UTF-8 ALL");
    CHECK_FALSE(parse_sort(bad));
    Parser t("REFERENCES US-ASCII SINCE 1-Feb-2020");
    auto th = parse_thread(t);
    REQUIRE(th);
    CHECK(th->algorithm == ThreadRequest::Algorithm::References);
    Parser tb("FOO UTF-8 ALL");
    CHECK_FALSE(parse_thread(tb));
}

#include "lib/imap/thread.hpp"

namespace {
ThreadMessage msg(uint32_t n, int64_t date, std::string subject, std::string id, std::string refs = "") {
    ThreadMessage m;
    m.id = n;
    m.seq = n;
    m.date = date;
    m.subject = std::move(subject);
    m.message_id = std::move(id);
    m.references = std::move(refs);
    return m;
}
}  // namespace

TEST_CASE("imap thread: base subject (RFC 5256 2.1)", "[imap]") {
    bool reply = false;
    CHECK(base_subject("Re: [list] Fwd: Hello   World (fwd)", &reply) == "hello world");
    CHECK(reply);
    CHECK(base_subject("[Fwd: lunch]", &reply) == "lunch");
    CHECK(base_subject("[only a blob]", &reply) == "[only a blob]");
    CHECK(base_subject("Plain", &reply) == "plain");
    CHECK_FALSE(reply);
    CHECK(base_subject("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=") == base_subject("RE: grüße"));
    CHECK(message_ids(" <a@b>\r\n <c@d> junk <e@f") == std::vector<std::string>{"<a@b>", "<c@d>"});
}

TEST_CASE("imap thread: ORDEREDSUBJECT", "[imap]") {
    std::vector<ThreadMessage> ms = {msg(1, 100, "apple", ""), msg(2, 50, "banana", ""), msg(3, 200, "Re: apple", ""),
                                     msg(4, 300, "re: apple", ""), msg(5, 60, "Re: banana", "")};
    CHECK(thread_orderedsubject(ms) == "(2 5)(1 (3)(4))");
}

TEST_CASE("imap thread: REFERENCES", "[imap]") {
    std::vector<ThreadMessage> ms = {
        msg(1, 100, "topic", "<1@x>"),
        msg(2, 200, "Re: topic", "<2@x>", "<1@x>"),
        msg(3, 300, "Re: topic", "<3@x>", "<1@x> <2@x>"),
        msg(4, 250, "Re: topic", "<4@x>", "<1@x>"),
        msg(5, 50, "other", "<5@x>"),
        // Parent missing from the mailbox: two children of one dummy root.
        msg(6, 400, "lost", "<6@x>", "<gone@x>"),
        msg(7, 410, "lost", "<7@x>", "<gone@x>"),
        // Same subject, no references: grouped with "other" under one dummy.
        msg(8, 500, "other", "<8@x>"),
    };
    CHECK(thread_references(ms) == "((5)(8))(1 (2 3)(4))((6)(7))");
    // A reference loop does not hang or lose messages.
    std::vector<ThreadMessage> loop = {msg(1, 1, "a", "<a@x>", "<b@x>"), msg(2, 2, "b", "<b@x>", "<a@x>")};
    std::string out = thread_references(loop);
    CHECK(out.find('1') != std::string::npos);
    CHECK(out.find('2') != std::string::npos);
}
