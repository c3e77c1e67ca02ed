// Unit tests for lib/dns message building and parsing: valid answers, CNAME
// chains, RCODE mapping, and hostile replies (wrong ID, wrong question,
// garbage, CNAME loops, truncated records).
#include <catch2/catch.hpp>

#include <ldns/ldns.h>

#include <cstdlib>

#include "lib/dns/message.hpp"
#include "lib/dns/resolver.hpp"

using namespace tern;
using namespace tern::dns;

namespace {

// A reply to (name, type, id) with the given answer lines and rcode.
std::string reply(const std::string& name, Type type, uint16_t id, const std::vector<std::string>& answers,
                  ldns_pkt_rcode rcode = LDNS_RCODE_NOERROR, bool ad = false) {
    ldns_pkt* p = nullptr;
    ldns_pkt_query_new_frm_str(&p, (name + ".").c_str(), static_cast<ldns_rr_type>(type), LDNS_RR_CLASS_IN, LDNS_RD);
    ldns_pkt_set_id(p, id);
    ldns_pkt_set_qr(p, true);
    ldns_pkt_set_ad(p, ad);
    ldns_pkt_set_rcode(p, rcode);
    for (const auto& line : answers) {
        ldns_rr* rr = nullptr;
        REQUIRE(ldns_rr_new_frm_str(&rr, line.c_str(), 300, nullptr, nullptr) == LDNS_STATUS_OK);
        ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
    }
    uint8_t* wire = nullptr;
    size_t size = 0;
    REQUIRE(ldns_pkt2wire(&wire, p, &size) == LDNS_STATUS_OK);
    std::string out(reinterpret_cast<char*>(wire), size);
    std::free(wire);
    ldns_pkt_free(p);
    return out;
}

}  // namespace

TEST_CASE("dns: query wire format", "[dns]") {
    auto q = build_query("Example.ORG.", Type::MX, 0x1234);
    REQUIRE(q);
    ldns_pkt* p = nullptr;
    REQUIRE(ldns_wire2pkt(&p, reinterpret_cast<const uint8_t*>(q->data()), q->size()) == LDNS_STATUS_OK);
    CHECK(ldns_pkt_id(p) == 0x1234);
    CHECK(ldns_pkt_rd(p));
    CHECK(ldns_pkt_ad(p));
    CHECK(ldns_pkt_edns_do(p));
    CHECK(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_question(p), 0)) == LDNS_RR_TYPE_MX);
    ldns_pkt_free(p);
    CHECK_FALSE(build_query(std::string(300, 'a'), Type::A, 1));
    CHECK_FALSE(build_query("a..b", Type::A, 1));
}

TEST_CASE("dns: MX, A, AAAA, TXT, TLSA answers", "[dns]") {
    auto a = parse_answer(reply("example.org", Type::MX, 7,
                                {"example.org. 300 IN MX 10 MX1.Example.org.", "example.org. 300 IN MX 20 mx2.example.org."}),
                          7, "example.org", Type::MX);
    REQUIRE(a);
    CHECK(a->status == AnswerStatus::Ok);
    REQUIRE(a->records.size() == 2);
    CHECK(a->records[0].preference == 10);
    CHECK(a->records[0].text == "mx1.example.org");
    CHECK_FALSE(a->authenticated);

    auto nullmx = parse_answer(reply("example.org", Type::MX, 7, {"example.org. 300 IN MX 0 ."}), 7, "example.org", Type::MX);
    REQUIRE(nullmx);
    REQUIRE(nullmx->records.size() == 1);
    CHECK(nullmx->records[0].text.empty());

    auto v4 = parse_answer(reply("mx.example.org", Type::A, 9, {"mx.example.org. 60 IN A 192.0.2.1"}, LDNS_RCODE_NOERROR, true),
                           9, "MX.example.org.", Type::A);
    REQUIRE(v4);
    CHECK(v4->records.at(0).text == "192.0.2.1");
    CHECK(v4->records.at(0).ttl == 60);
    CHECK(v4->authenticated);

    auto v6 = parse_answer(reply("mx.example.org", Type::AAAA, 9, {"mx.example.org. 60 IN AAAA 2001:db8::1"}), 9,
                           "mx.example.org", Type::AAAA);
    REQUIRE(v6);
    CHECK(v6->records.at(0).text == "2001:db8::1");

    auto txt = parse_answer(reply("_mta-sts.example.org", Type::TXT, 3,
                                  {"_mta-sts.example.org. 60 IN TXT \"v=STSv1; \" \"id=20240101\""}),
                            3, "_mta-sts.example.org", Type::TXT);
    REQUIRE(txt);
    CHECK(txt->records.at(0).text == "v=STSv1; id=20240101");

    auto tlsa = parse_answer(reply("_25._tcp.mx.example.org", Type::TLSA, 3,
                                   {"_25._tcp.mx.example.org. 60 IN TLSA 3 1 1 0102030405"}),
                             3, "_25._tcp.mx.example.org", Type::TLSA);
    REQUIRE(tlsa);
    REQUIRE(tlsa->records.size() == 1);
    CHECK(tlsa->records[0].usage == 3);
    CHECK(tlsa->records[0].selector == 1);
    CHECK(tlsa->records[0].matching == 1);
    CHECK(tlsa->records[0].data == std::string("\x01\x02\x03\x04\x05"));
}

TEST_CASE("dns: RCODEs map to permanent and temporary failures", "[dns]") {
    auto nx = parse_answer(reply("nx.example", Type::MX, 1, {}, LDNS_RCODE_NXDOMAIN), 1, "nx.example", Type::MX);
    REQUIRE(nx);
    CHECK(nx->status == AnswerStatus::NxDomain);
    auto sf = parse_answer(reply("sf.example", Type::MX, 1, {}, LDNS_RCODE_SERVFAIL), 1, "sf.example", Type::MX);
    REQUIRE(sf);
    CHECK(sf->status == AnswerStatus::TempFail);
    CHECK(sf->error == "SERVFAIL");
    auto refused = parse_answer(reply("r.example", Type::MX, 1, {}, LDNS_RCODE_REFUSED), 1, "r.example", Type::MX);
    REQUIRE(refused);
    CHECK(refused->status == AnswerStatus::TempFail);
    auto nodata = parse_answer(reply("e.example", Type::MX, 1, {}), 1, "e.example", Type::MX);
    REQUIRE(nodata);
    CHECK(nodata->status == AnswerStatus::NoData);
    CHECK_FALSE(nodata->cname_unresolved);
}

TEST_CASE("dns: CNAME chains", "[dns]") {
    auto a = parse_answer(reply("www.example.org", Type::A, 5,
                                {"www.example.org. 60 IN CNAME web.example.org.", "web.example.org. 60 IN CNAME host.example.net.",
                                 "host.example.net. 60 IN A 192.0.2.9", "other.example.net. 60 IN A 192.0.2.10"}),
                          5, "www.example.org", Type::A);
    REQUIRE(a);
    CHECK(a->canonical == "host.example.net");
    REQUIRE(a->records.size() == 1);
    CHECK(a->records[0].text == "192.0.2.9");

    auto partial = parse_answer(reply("www.example.org", Type::A, 5, {"www.example.org. 60 IN CNAME web.example.org."}), 5,
                                "www.example.org", Type::A);
    REQUIRE(partial);
    CHECK(partial->status == AnswerStatus::NoData);
    CHECK(partial->cname_unresolved);
    CHECK(partial->canonical == "web.example.org");

    // A loop in the answer section ends at the bound, as an error.
    auto loop = parse_answer(reply("a.example", Type::A, 5, {"a.example. 60 IN CNAME b.example.", "b.example. 60 IN CNAME a.example."}),
                             5, "a.example", Type::A);
    CHECK_FALSE(loop);
}

TEST_CASE("dns: hostile replies", "[dns]") {
    std::string good = reply("example.org", Type::MX, 7, {"example.org. 300 IN MX 10 mx.example.org."});
    CHECK_FALSE(parse_answer(good, 8, "example.org", Type::MX));             // another ID
    CHECK_FALSE(parse_answer(good, 7, "example.com", Type::MX));             // another name
    CHECK_FALSE(parse_answer(good, 7, "example.org", Type::A));              // another type
    CHECK_FALSE(parse_answer("", 7, "example.org", Type::MX));
    CHECK_FALSE(parse_answer(std::string(12, '\0'), 0, "example.org", Type::MX));
    for (size_t cut = 0; cut < good.size(); ++cut) CHECK_FALSE(parse_answer(good.substr(0, cut), 7, "example.org", Type::MX));
    std::string flipped = good;
    for (size_t i = 12; i < flipped.size(); ++i) {
        flipped[i] = static_cast<char>(flipped[i] ^ 0xff);
        (void)parse_answer(flipped, 7, "example.org", Type::MX);  // must not crash
        flipped[i] = good[i];
    }
    // Records of the right type but for another owner are ignored.
    auto other = parse_answer(reply("example.org", Type::MX, 7, {"evil.example. 300 IN MX 10 mx.evil.example."}), 7,
                              "example.org", Type::MX);
    REQUIRE(other);
    CHECK(other->records.empty());
}

TEST_CASE("dns: server lists", "[dns]") {
    auto s = parse_server("127.0.0.1:5353");
    REQUIRE(s);
    CHECK(s->text == "127.0.0.1:5353");
    CHECK(parse_server("127.0.0.1")->text == "127.0.0.1:53");
    CHECK(parse_server("[::1]:53")->text == "[::1]:53");
    CHECK(parse_server("::1")->text == "[::1]:53");
    CHECK_FALSE(parse_server("ns.example.org"));
    CHECK_FALSE(parse_server("127.0.0.1:0"));
    CHECK_FALSE(parse_server("127.0.0.1:99999"));
    auto list = servers_from_resolv_conf("# comment\nsearch example.org\nnameserver 192.0.2.53\nnameserver\tfe80::1%eth0\n"
                                         "nameserver ::1\nnameserver bogus\nnameserverx 1.2.3.4\n  nameserver 127.0.0.53 # local\n");
    REQUIRE(list.size() == 3);
    CHECK(list[0].text == "192.0.2.53:53");
    CHECK(list[1].text == "[::1]:53");
    CHECK(list[2].text == "127.0.0.53:53");
}
