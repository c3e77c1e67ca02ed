// Unit tests for lib/tables' remote delivery tables: the destination-keyed
// map (transport_maps, smtp_tls_policy_maps), transport values, and SMTP
// AUTH credentials lines.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "lib/tables/credentials.hpp"
#include "lib/tables/domain_map.hpp"

using namespace tern::tables;

TEST_CASE("domain map: parse", "[tables][domain_map]") {
    auto e = parse_domain_map("# c\nExample.ORG  smtp:[mx]:25\n\n  .sub.example.org\tlocal\n*  error:nope\n", "t");
    REQUIRE(e);
    REQUIRE(e->size() == 3);
    CHECK((*e)[0].first == "example.org");
    CHECK((*e)[0].second == "smtp:[mx]:25");
    CHECK((*e)[1].first == ".sub.example.org");
    CHECK((*e)[2].first == "*");
    auto bad = parse_domain_map("ok value\nlonely\n", "transport");
    REQUIRE_FALSE(bad);
    CHECK(bad.message() == "transport:2: a key without a value");
}

TEST_CASE("domain map: most specific entry wins", "[tables][domain_map]") {
    char tmpl[] = "/tmp/tern-domain-map.XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    std::filesystem::path dir(tmpl);
    {
        std::ofstream f(dir / "transport");
        f << "example.org smtp:[a]\n.example.org smtp:[b]\n.org smtp:[c]\n[relay.example]:587 encrypt\n";
    }
    auto m = DomainMap::open((dir / "transport").string());
    REQUIRE(m);
    CHECK(**m->lookup("Example.org.") == "smtp:[a]");
    CHECK(**m->lookup("x.y.example.org") == "smtp:[b]");
    CHECK(**m->lookup("other.org") == "smtp:[c]");
    CHECK(**m->lookup("[relay.example]:587") == "encrypt");
    CHECK_FALSE(*m->lookup("example.net"));
    {
        std::ofstream f(dir / "transport", std::ios::app);
        f << "* smtp:[fallback]\n";
    }
    REQUIRE(m->refresh());
    CHECK(**m->lookup("example.net") == "smtp:[fallback]");
    auto empty = DomainMap::open("");
    REQUIRE(empty);
    CHECK_FALSE(*empty->lookup("example.org"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("transport values", "[tables][domain_map]") {
    auto smtp = parse_transport("smtp:[mail.example.org]:587");
    REQUIRE(smtp);
    CHECK(smtp->kind == TransportEntry::Kind::Smtp);
    CHECK(smtp->nexthop == "[mail.example.org]:587");
    CHECK(parse_transport("smtp:")->nexthop.empty());
    CHECK(parse_transport("smtp")->nexthop.empty());
    CHECK(parse_transport("local")->kind == TransportEntry::Kind::Local);
    auto err = parse_transport("error:5.7.1 go away");
    REQUIRE(err);
    CHECK(err->kind == TransportEntry::Kind::Error);
    CHECK(err->dsn == "5.7.1");
    CHECK(err->text == "go away");
    auto plain = parse_transport("error:not 5.1.1 a code");
    CHECK(plain->dsn == "5.0.0");
    CHECK(plain->text == "not 5.1.1 a code");
    CHECK(parse_transport("error:")->text == "mail for this destination is refused");
    CHECK(parse_transport("error:4.4.5 later")->dsn == "4.4.5");
    CHECK_FALSE(parse_transport("uucp:host"));
    CHECK_FALSE(parse_transport("smtp:[unbalanced"));
    CHECK_FALSE(parse_transport("local:extra"));
}

TEST_CASE("SMTP AUTH credentials", "[tables][credentials]") {
    std::string text = "# comment\n[smtp.example.net]:587 alice:pa ss:word\n  [Other.example]\tbob:x\r\nbroken nocolon\n"
                       "[empty.example] :nouser\n";
    auto a = find_credentials(text, "[SMTP.example.net]:587");
    REQUIRE(a);
    CHECK(a->user == "alice");
    CHECK(a->password == "pa ss:word");
    auto b = find_credentials(text, "[other.example]");
    REQUIRE(b);
    CHECK(b->password == "x");
    CHECK_FALSE(find_credentials(text, "[smtp.example.net]"));
    CHECK_FALSE(find_credentials(text, "broken"));
    CHECK_FALSE(find_credentials(text, "[empty.example]"));
    CHECK_FALSE(find_credentials("", "x"));
}
