// Unit tests for lib/maildrop: round trips, truncation and damage detection,
// hostile envelopes.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "lib/maildrop/maildrop.hpp"

using namespace tern::maildrop;

namespace {

Envelope sample() {
    Envelope e;
    e.time = 1700000000;
    e.uid = 1000;
    e.sender = "alice@example.org";
    e.fullname = "Alice Example";
    e.recipients = {"bob@example.org", "carol@example.net"};
    return e;
}

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/maildrop-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("maildrop: serialize and parse round trip", "[maildrop]") {
    std::string content = "Subject: hi\n\nline one\n.\nlast line without newline";
    auto file = serialize(sample(), content);
    REQUIRE(file.ok());
    auto parsed = parse(*file);
    REQUIRE(parsed.ok());
    CHECK(parsed->envelope.time == 1700000000);
    CHECK(parsed->envelope.uid == 1000);
    CHECK(parsed->envelope.sender == "alice@example.org");
    CHECK(parsed->envelope.fullname == "Alice Example");
    CHECK(parsed->envelope.recipients == std::vector<std::string>{"bob@example.org", "carol@example.net"});
    CHECK(parsed->content == content);
}

TEST_CASE("maildrop: null sender and empty content are valid", "[maildrop]") {
    Envelope e = sample();
    e.sender = "";
    e.fullname = "";
    auto file = serialize(e, "");
    REQUIRE(file.ok());
    auto parsed = parse(*file);
    REQUIRE(parsed.ok());
    CHECK(parsed->envelope.sender.empty());
    CHECK(parsed->content.empty());
}

TEST_CASE("maildrop: every truncation of a file is rejected", "[maildrop]") {
    auto file = serialize(sample(), "Subject: x\n\nbody\n");
    REQUIRE(file.ok());
    for (size_t len = 0; len < file->size(); ++len) {
        INFO("length " << len);
        CHECK_FALSE(parse(std::string_view(*file).substr(0, len)).ok());
    }
}

TEST_CASE("maildrop: a flipped content byte is detected", "[maildrop]") {
    auto file = serialize(sample(), "Subject: x\n\nbody\n");
    REQUIRE(file.ok());
    std::string damaged = *file;
    damaged[damaged.find("body")] = 'B';
    auto parsed = parse(damaged);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.message().find("checksum") != std::string::npos);
}

TEST_CASE("maildrop: hostile envelopes are rejected", "[maildrop]") {
    Envelope e = sample();
    e.sender = "evil@example.org\nrcpt injected@example.org";
    CHECK_FALSE(format_envelope(e).ok());
    e = sample();
    e.recipients.clear();
    CHECK_FALSE(format_envelope(e).ok());
    e = sample();
    e.recipients.push_back("");
    CHECK_FALSE(format_envelope(e).ok());

    CHECK_FALSE(parse_envelope("tern-maildrop 2\ntime 1\nuid 1\nsender \nfullname \nrcpt a@b\n\n").ok());
    CHECK_FALSE(parse_envelope("tern-maildrop 1\ntime x\nuid 1\nsender \nfullname \nrcpt a@b\n\n").ok());
    CHECK_FALSE(parse_envelope("tern-maildrop 1\ntime 1\ntime 1\nuid 1\nsender \nfullname \nrcpt a@b\n\n").ok());
    CHECK_FALSE(parse_envelope("tern-maildrop 1\ntime 1\nuid 1\nsender \nfullname \n\n").ok());
    CHECK_FALSE(parse_envelope("tern-maildrop 1\ntime 1\nuid 1\nsender \nfullname \nbogus x\nrcpt a@b\n\n").ok());
    CHECK_FALSE(parse_envelope("tern-maildrop 1\ntime 1\nuid 99999999999999999999\nsender \nfullname \nrcpt a@b\n\n").ok());
    CHECK(parse_envelope("tern-maildrop 1\ntime 1\nuid 1\nsender \nfullname \nrcpt a@b\n\n").ok());
}

TEST_CASE("maildrop: trailer boundary values", "[maildrop]") {
    auto t = parse_trailer(format_trailer(18446744073709551615ULL, 0xffffffffffffffffULL));
    REQUIRE(t.ok());
    CHECK(t->size == 18446744073709551615ULL);
    CHECK(format_trailer(0, 0).size() == kTrailerSize);
    std::string bad = format_trailer(5, 1);
    bad[20] = 'x';
    CHECK_FALSE(parse_trailer(bad).ok());
}

TEST_CASE("maildrop: Writer commits atomically and Reader streams it back", "[maildrop]") {
    TempDir dir;
    std::string big(200000, 'a');
    for (size_t i = 80; i < big.size(); i += 81) big[i] = '\n';
    std::string name;
    {
        auto w = Writer::create(dir.path, sample());
        REQUIRE(w.ok());
        REQUIRE(w->write("Subject: big\n\n").ok());
        REQUIRE(w->write(big).ok());
        // Before commit only a temporary name exists, which list() ignores.
        auto names = list(dir.path);
        REQUIRE(names.ok());
        CHECK(names->empty());
        auto committed = w->commit();
        REQUIRE(committed.ok());
        name = *committed;
    }
    auto names = list(dir.path);
    REQUIRE(names.ok());
    REQUIRE(names->size() == 1);
    CHECK((*names)[0] == name);

    auto r = Reader::open(dir.path + "/" + name);
    REQUIRE(r.ok());
    CHECK(r->envelope().recipients.size() == 2);
    std::string content;
    for (int i = 0; i < 100; ++i) {
        auto chunk = r->read(4096);
        REQUIRE(chunk.ok());
        if (chunk->empty()) break;
        content += *chunk;
    }
    CHECK(content == "Subject: big\n\n" + big);
    CHECK(r->finish().ok());
    CHECK(parse(slurp(dir.path + "/" + name)).ok());
}

TEST_CASE("maildrop: an abandoned Writer leaves nothing behind", "[maildrop]") {
    TempDir dir;
    {
        auto w = Writer::create(dir.path, sample());
        REQUIRE(w.ok());
        REQUIRE(w->write("Subject: x\n\npartial").ok());
    }
    CHECK(std::filesystem::is_empty(dir.path));
}

TEST_CASE("maildrop: Reader rejects a truncated file on disk", "[maildrop]") {
    TempDir dir;
    auto file = serialize(sample(), "Subject: x\n\nbody\n");
    REQUIRE(file.ok());
    std::string path = dir.path + "/0001";
    {
        std::ofstream out(path, std::ios::binary);
        out << file->substr(0, file->size() - 10);
    }
    CHECK_FALSE(Reader::open(path).ok());
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        std::string damaged = *file;
        damaged[damaged.find("body")] = 'x';
        out << damaged;
    }
    auto r = Reader::open(path);
    REQUIRE(r.ok());  // size matches; the checksum is only known at the end
    for (int i = 0; i < 10; ++i) {
        auto chunk = r->read();
        REQUIRE(chunk.ok());
        if (chunk->empty()) break;
    }
    CHECK_FALSE(r->finish().ok());
}

// ---- sendmail -t: recipients from headers ----

#include "lib/maildrop/header_recipients.hpp"

TEST_CASE("header recipients: address list forms (RFC 5322 3.4)", "[maildrop]") {
    CHECK(parse_address_list(" bob@example.org") == std::vector<std::string>{"bob@example.org"});
    CHECK(parse_address_list(" Bob <bob@example.org>, \"Smith, Carol\" <carol@example.org>") ==
          std::vector<std::string>{"bob@example.org", "carol@example.org"});
    CHECK(parse_address_list(" dave@example.org (Dave), Team: a@x.org, b@x.org;, e@y.org") ==
          std::vector<std::string>{"dave@example.org", "a@x.org", "b@x.org", "e@y.org"});
    CHECK(parse_address_list(" \"odd name\"@example.org") == std::vector<std::string>{"\"odd name\"@example.org"});
    CHECK(parse_address_list(" <@relay.example:frank@example.org>") == std::vector<std::string>{"frank@example.org"});
    CHECK(parse_address_list(" undisclosed-recipients:;").empty());
    CHECK(parse_address_list("").empty());
    CHECK(parse_address_list(" bob\n\t@example.org") == std::vector<std::string>{"bob@example.org"});
}

TEST_CASE("header recipients: hostile and malformed lists never crash", "[maildrop]") {
    std::vector<std::string> bad;
    auto r = parse_address_list(" John Smith john@example.org, ok@example.org", &bad);
    CHECK(r == std::vector<std::string>{"ok@example.org"});
    CHECK(bad.size() == 1);
    CHECK(parse_address_list(" <unterminated@example.org").size() <= 1);
    CHECK(parse_address_list(" \"unterminated@example.org").empty());
    CHECK(parse_address_list(" (((nested comment) a@b").empty());
    CHECK(parse_address_list(" <>, <a@b>") == std::vector<std::string>{"a@b"});
    std::string many(100000, ',');
    CHECK(parse_address_list(many).empty());
}

TEST_CASE("header recipients: To/Cc/Bcc collected, Bcc removed", "[maildrop]") {
    auto h = extract_header_recipients(
        "From: alice@example.org\n"
        "To: bob@example.org,\n"
        "  carol@example.org\n"
        "Cc: Dave <dave@example.org>\n"
        "bcc: secret@example.org,\n"
        "\tsecret2@example.org\n"
        "Subject: To: not@example.org\n");
    CHECK(h.recipients ==
          std::vector<std::string>{"bob@example.org", "carol@example.org", "dave@example.org", "secret@example.org",
                                   "secret2@example.org"});
    CHECK(h.headers.find("secret") == std::string::npos);
    CHECK(h.headers.find("Subject: To: not@example.org\n") != std::string::npos);
    CHECK(h.headers.find("  carol@example.org\n") != std::string::npos);
}

TEST_CASE("header recipients: Resent- fields take precedence", "[maildrop]") {
    auto h = extract_header_recipients(
        "To: original@example.org\n"
        "Resent-To: new@example.org\n"
        "Resent-Bcc: hidden@example.org\n");
    CHECK(h.recipients == std::vector<std::string>{"new@example.org", "hidden@example.org"});
    CHECK(h.headers == "To: original@example.org\nResent-To: new@example.org\n");
}

TEST_CASE("maildrop: DSN fields round trip and are checked", "[maildrop]") {
    Envelope e = sample();
    e.notify = 2 | 4;
    e.ret = "HDRS";
    e.envid = "QQ314159";
    auto file = serialize(e, "x\n");
    REQUIRE(file.ok());
    auto parsed = parse(*file);
    REQUIRE(parsed.ok());
    CHECK(parsed->envelope.notify == 6);
    CHECK(parsed->envelope.ret == "HDRS");
    CHECK(parsed->envelope.envid == "QQ314159");

    e.ret = "PARTIAL";
    CHECK_FALSE(format_envelope(e).ok());
    e.ret = "";
    e.notify = 16;
    CHECK_FALSE(format_envelope(e).ok());
    const char* head = "tern-maildrop 1\ntime 1\nuid 1\nsender \nfullname \n";
    CHECK_FALSE(parse_envelope(std::string(head) + "notify 0\nrcpt a@b\n\n").ok());
    CHECK_FALSE(parse_envelope(std::string(head) + "notify 99\nrcpt a@b\n\n").ok());
    CHECK_FALSE(parse_envelope(std::string(head) + "ret full\nrcpt a@b\n\n").ok());
    CHECK_FALSE(parse_envelope(std::string(head) + "envid \nrcpt a@b\n\n").ok());
    CHECK(parse_envelope(std::string(head) + "notify 8\nret FULL\nenvid x\nrcpt a@b\n\n").ok());
}
