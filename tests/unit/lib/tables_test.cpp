// Unit tests for lib/tables: aliases(5) and users-file parsing (valid,
// boundary, hostile), compiled LMDB tables (stale → rebuilt or refused),
// domain lists, address pieces, and RecipientCheck's answers.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "lib/config/config.hpp"
#include "lib/tables/address.hpp"
#include "lib/tables/aliases.hpp"
#include "lib/tables/domains.hpp"
#include "lib/tables/recipient_check.hpp"
#include "lib/tables/users.hpp"

using namespace tern::tables;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/tern-tables-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
    std::string file(const std::string& name, const std::string& text) const {
        auto p = path / name;
        std::ofstream(p) << text;
        return p.string();
    }
};

std::string current_user() {
    struct passwd* pw = ::getpwuid(::getuid());
    return pw ? pw->pw_name : "root";
}

// Bumps a file's mtime so that an edit within the same clock tick is seen.
void touch_later(const std::string& path, int seconds) {
    struct timespec times[2];
    ::clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec += seconds;
    times[1] = times[0];
    ::utimensat(AT_FDCWD, path.c_str(), times, 0);
}

}  // namespace

TEST_CASE("aliases: entries, continuation lines, comments, quotes", "[tables]") {
    auto p = parse_aliases(
        "# comment\n"
        "Postmaster: root\n"
        "\n"
        "team: alice, bob@example.org,\n"
        "  \"|/usr/bin/ticket --queue a,b\",\n"
        "# a comment inside an entry\n"
        "\t/var/log/archive, :include:/etc/tern/team.list\n"
        "\"odd name\": \\alice\n",
        "aliases");
    REQUIRE(p.diagnostics.empty());
    REQUIRE(p.entries.size() == 3);
    CHECK(p.entries[0].name == "postmaster");
    CHECK(p.entries[0].line == 2);
    CHECK(p.entries[1].name == "team");
    REQUIRE(p.entries[1].targets.size() == 5);
    CHECK(p.entries[1].targets[2] == "|/usr/bin/ticket --queue a,b");
    CHECK(p.entries[1].targets[4] == ":include:/etc/tern/team.list");
    CHECK(p.entries[2].name == "odd name");

    CHECK(classify_target("alice") == AliasTarget{TargetKind::Address, "alice", false});
    CHECK(classify_target("\\alice") == AliasTarget{TargetKind::Address, "alice", true});
    CHECK(classify_target("|/bin/cat") == AliasTarget{TargetKind::Command, "/bin/cat", false});
    CHECK(classify_target("/var/mail/x") == AliasTarget{TargetKind::File, "/var/mail/x", false});
    CHECK(classify_target(":include: /etc/list") == AliasTarget{TargetKind::Include, "/etc/list", false});
}

TEST_CASE("aliases: bad lines are reported with file:line and skipped", "[tables]") {
    auto p = parse_aliases(
        "  leading continuation\n"
        "no colon here\n"
        ": empty name\n"
        "empty:\n"
        "quote: \"unterminated, x\n"
        "inc: :include:\n"
        "ctl: a\x01b\n"
        "good: alice\n",
        "al");
    REQUIRE(p.entries.size() == 1);
    CHECK(p.entries[0].name == "good");
    CHECK(p.entries[0].line == 8);
    REQUIRE(p.diagnostics.size() == 7);
    CHECK(p.diagnostics[0].rfind("al:1: ", 0) == 0);
    CHECK(p.diagnostics[1].find("missing ':'") != std::string::npos);
    CHECK(p.diagnostics[4].find("unterminated quote") != std::string::npos);
}

TEST_CASE("aliases: boundaries", "[tables]") {
    CHECK(parse_aliases("", "a").entries.empty());
    CHECK(parse_aliases("\n\n#x\n", "a").entries.empty());
    auto p = parse_aliases("a:b", "a");  // no final newline
    REQUIRE(p.entries.size() == 1);
    CHECK(p.entries[0].targets == std::vector<std::string>{"b"});
    p = parse_aliases("a: b,,  ,c\r\n", "a");  // empty list items, CRLF
    REQUIRE(p.entries.size() == 1);
    CHECK(p.entries[0].targets == std::vector<std::string>{"b", "c"});
    std::string huge = "x: " + std::string(100000, 'y') + "\n";
    CHECK(parse_aliases(huge, "a").entries.size() == 1);
}

TEST_CASE("target lists for .forward and :include:", "[tables]") {
    std::vector<std::string> diags;
    auto t = parse_target_list("# forward\n\\me, other@example.org\n\"|/bin/cat -n\"\n\"bad\n", &diags);
    CHECK(t == std::vector<std::string>{"\\me", "other@example.org", "|/bin/cat -n"});
    CHECK(diags.size() == 1);
}

TEST_CASE("compiled aliases: lookup, stale rebuild, refusal", "[tables]") {
    TempDir dir;
    auto path = dir.file("aliases", "Team: alice, bob\nroot: admin\n");
    REQUIRE(compile_aliases(path));
    REQUIRE(fs::exists(path + ".lmdb"));
    auto table = AliasTable::open(path);
    REQUIRE(table);
    auto team = table->lookup("TEAM");
    REQUIRE(team);
    REQUIRE(*team);
    CHECK((*team)->size() == 2);
    CHECK((**team)[1].value == "bob");
    auto none = table->lookup("nobody-here");
    REQUIRE(none);
    CHECK(!*none);

    // Edit the source: refresh() must see it and rebuild (directory writable).
    dir.file("aliases", "team: carol\n");
    touch_later(path, 2);
    REQUIRE(table->refresh());
    team = table->lookup("team");
    REQUIRE(team);
    REQUIRE(*team);
    CHECK((**team)[0].value == "carol");
    CHECK(!*table->lookup("root"));

    // Missing compiled file is rebuilt on open.
    fs::remove(path + ".lmdb");
    REQUIRE(AliasTable::open(path));

    if (::geteuid() != 0) {  // root ignores directory permissions
        dir.file("aliases", "team: dave\n");
        touch_later(path, 4);
        ::chmod(dir.path.c_str(), 0555);
        auto stale = AliasTable::open(path);
        CHECK(!stale);
        CHECK(stale.message().find("refusing") != std::string::npos);
        CHECK(!table->refresh());
        CHECK(!table->lookup("team"));  // a stale table never answers
        ::chmod(dir.path.c_str(), 0755);
    }
}

TEST_CASE("compiled table: a stale file is never used even when timestamps go backwards", "[tables]") {
    TempDir dir;
    auto path = dir.file("aliases", "a: one\n");
    touch_later(path, 100);
    REQUIRE(compile_aliases(path));
    dir.file("aliases", "a: two\n");  // now older than the compiled file
    auto table = AliasTable::open(path);
    REQUIRE(table);
    CHECK((**table->lookup("a"))[0].value == "two");
}

TEST_CASE("compiled table: as private as its source (mode, and owner when root)", "[tables]") {
    TempDir dir;
    for (mode_t mode : {0640, 0644, 0600}) {
        std::string path = dir.file("aliases" + std::to_string(mode), "postmaster: root\n");
        REQUIRE(::chmod(path.c_str(), mode) == 0);
        if (::geteuid() == 0) REQUIRE(::chown(path.c_str(), 0, 12345) == 0);
        REQUIRE(compile_aliases(path));
        struct stat st {};
        REQUIRE(::stat((path + ".lmdb").c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == mode);
        if (::geteuid() == 0) CHECK(st.st_gid == 12345u);
    }
}

TEST_CASE("users file: fields, quota, hostile lines", "[tables]") {
    auto p = parse_users(
        "# users\n"
        "Alice@Example.ORG:{SHA512-CRYPT}$6$s$h:1000:1000:/home/alice:quota=50M other=x\n"
        "bob@example.org:{PLAIN}pw\n"
        "carol@example.org:{PLAIN}pw:::: quota=100\n"
        "nodomain:{PLAIN}x\n"
        "bad@example.org:{PLAIN}x:abc\n"
        "rel@example.org:{PLAIN}x:::relative\n"
        "q@example.org:{PLAIN}x::::quota=lots\n"
        "bob@example.org:{PLAIN}dup\n"
        "onlyfield\n",
        "users");
    REQUIRE(p.users.size() == 3);
    CHECK(p.users[0].address == "alice@example.org");
    CHECK(p.users[0].password == "{SHA512-CRYPT}$6$s$h");
    CHECK(p.users[0].uid == 1000u);
    CHECK(p.users[0].home == "/home/alice");
    CHECK(p.users[0].quota == 50ull * 1024 * 1024);
    CHECK(!p.users[1].uid);
    CHECK(p.users[1].quota == 0);
    CHECK(p.users[2].quota == 100);
    CHECK(p.diagnostics.size() == 6);
}

TEST_CASE("compiled users table holds no passwords", "[tables]") {
    TempDir dir;
    auto path = dir.file("users", "alice@example.org:{PLAIN}secret-password::::quota=1k\n");
    auto table = UsersTable::open(path);
    REQUIRE(table);
    auto alice = table->lookup("ALICE@example.org");
    REQUIRE(alice);
    REQUIRE(*alice);
    CHECK((*alice)->quota == 1024);
    CHECK((*alice)->password.empty());
    std::ifstream in(path + ".lmdb", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(bytes.find("secret-password") == std::string::npos);
    CHECK(bytes.find("alice@example.org") != std::string::npos);
}

TEST_CASE("address pieces and extensions", "[tables]") {
    auto a = split_address("<User+Tag@Example.ORG.>");
    CHECK(a.local == "User+Tag");
    CHECK(a.domain == "example.org");
    CHECK(split_address("bare").domain.empty());
    CHECK(split_address("\"a@b\"@c").local == "\"a@b\"");
    CHECK(strip_extension("user+tag+more", "+") == "user");
    CHECK(extension_of("user+tag+more", "+") == "tag+more");
    CHECK(strip_extension("user-tag", "+-") == "user");
    CHECK(strip_extension("+user", "+") == "+user");
    CHECK(strip_extension("user+tag", "") == "user+tag");
}

TEST_CASE("domain lists from names and files", "[tables]") {
    TempDir dir;
    auto file = dir.file("domains", "# virtual\nExample.ORG\nother.test  OK\nbad/domain\n");
    std::vector<std::string> diags;
    auto parsed = parse_domain_list("a.test\nb@c\n", "f", &diags);
    CHECK(parsed == std::vector<std::string>{"a.test"});
    CHECK(diags.size() == 1);
    auto list = DomainList::load({"one.test", file});
    REQUIRE(list);
    CHECK(list->contains("ONE.test."));
    CHECK(list->contains("example.org"));
    CHECK(list->contains("other.test"));
    CHECK(!list->contains("bad/domain"));
    CHECK(!list->contains("three.test"));
    dir.file("domains", "three.test\n");
    touch_later(file, 2);
    REQUIRE(list->reload_if_changed());
    CHECK(list->contains("three.test"));
    CHECK(!list->contains("example.org"));
    CHECK(!DomainList::load({"/nonexistent/domains"}));
}

TEST_CASE("RecipientCheck: local, virtual, remote", "[tables]") {
    TempDir dir;
    auto aliases = dir.file("aliases", "team: alice\nsales@virtual.test: bob\n");
    auto users = dir.file("users", "alice@virtual.test:{PLAIN}x\n");
    auto config = tern::config::Config::parse("", "test");
    config.set("mydestination", "localhost, local.test");
    config.set("virtual_mailbox_domains", "virtual.test");
    config.set("alias_maps", aliases);
    config.set("virtual_mailbox_maps", users);
    config.set("recipient_delimiter", "+");
    auto check = RecipientCheck::open(config);
    REQUIRE(check);
    using D = RecipientCheck::Domain;
    CHECK(check->classify_domain("LOCAL.test") == D::Local);
    CHECK(check->classify_domain("virtual.test") == D::Virtual);
    CHECK(check->classify_domain("example.com") == D::Remote);
    CHECK(check->classify_domain("") == D::Local);

    std::string me = current_user();
    CHECK(check->exists("postmaster@local.test"));
    CHECK(check->exists("Postmaster@localhost"));
    CHECK(check->exists("team@local.test"));
    CHECK(check->exists("team+x@local.test"));
    CHECK(check->exists(me + "@localhost"));
    CHECK(check->exists(me + "+ext@localhost"));
    CHECK(!check->exists("no-such-user-xyzzy@local.test"));
    CHECK(!check->exists("../etc@local.test"));
    CHECK(check->exists("Alice@virtual.test"));
    CHECK(check->exists("alice+tag@virtual.test"));
    CHECK(check->exists("sales@virtual.test"));
    CHECK(check->exists("postmaster@virtual.test"));
    CHECK(!check->exists("bob@virtual.test"));
    CHECK(!check->exists("team@virtual.test"));  // local aliases do not apply to virtual domains
    CHECK(check->exists("anyone@example.com"));  // remote: not ours to judge

    // New users are seen after reload_if_changed().
    dir.file("users", "alice@virtual.test:{PLAIN}x\nbob@virtual.test:{PLAIN}y\n");
    touch_later(users, 2);
    REQUIRE(check->reload_if_changed());
    CHECK(check->exists("bob@virtual.test"));
}

TEST_CASE("RecipientCheck: a transport_maps `local` domain is a local domain", "[tables]") {
    TempDir dir;
    auto aliases = dir.file("aliases", "team: alice\n");
    auto transport = dir.file("transport", "routed.test local\n.sub.test local\nrelay.test smtp:[relay.example]\n");
    auto config = tern::config::Config::parse("", "test");
    config.set("mydestination", "localhost");
    config.set("virtual_mailbox_domains", "virtual.test");
    config.set("alias_maps", aliases);
    config.set("virtual_mailbox_maps", (dir.path / "none").string());
    config.set("transport_maps", transport);
    auto check = RecipientCheck::open(config);
    REQUIRE(check);
    using D = RecipientCheck::Domain;
    CHECK(check->classify_domain("Routed.TEST") == D::Local);
    CHECK(check->classify_domain("a.sub.test") == D::Local);
    CHECK(check->classify_domain("sub.test") == D::Remote);  // ".sub.test" is for subdomains only
    CHECK(check->classify_domain("relay.test") == D::Remote);
    CHECK(check->classify_domain("other.test") == D::Remote);
    CHECK(check->classify_domain("virtual.test") == D::Virtual);
    CHECK(check->exists("team@routed.test"));  // local part, as in mydestination
    CHECK(check->exists("postmaster@routed.test"));
    CHECK(check->check("no-such-user-xyzzy@routed.test") == RecipientCheck::Answer::No);

    // An edited table is picked up; a `*` entry does not take virtual domains.
    dir.file("transport", "* local\n");
    touch_later(transport, 2);
    REQUIRE(check->reload_if_changed());
    CHECK(check->classify_domain("other.test") == D::Local);
    CHECK(check->classify_domain("virtual.test") == D::Virtual);

    // A broken edit: the stale table must not answer, so domains that are
    // not ours by mydestination/virtual cannot be told (4xx, never 5xx).
    dir.file("transport", "a-key-without-a-value\n");
    touch_later(transport, 4);
    CHECK(!check->reload_if_changed());
    CHECK(check->classify_domain("other.test") == D::Unavailable);
    CHECK(check->check("x@other.test") == RecipientCheck::Answer::Unavailable);
    CHECK(check->classify_domain("localhost") == D::Local);
}

TEST_CASE("RecipientCheck: missing tables are empty, not errors", "[tables]") {
    TempDir dir;
    auto config = tern::config::Config::parse("", "test");
    config.set("mydestination", "localhost");
    config.set("virtual_mailbox_domains", "virtual.test");
    config.set("alias_maps", (dir.path / "none").string());
    config.set("virtual_mailbox_maps", (dir.path / "none2").string());
    auto check = RecipientCheck::open(config);
    REQUIRE(check);
    CHECK(check->tables_usable());
    CHECK(check->check("x@virtual.test") == RecipientCheck::Answer::No);
}

TEST_CASE("RecipientCheck: tables created or removed later are noticed", "[tables]") {
    TempDir dir;
    std::string aliases = (dir.path / "aliases").string();
    auto config = tern::config::Config::parse("", "test");
    config.set("mydestination", "localhost");
    config.set("alias_maps", aliases);
    config.set("virtual_mailbox_maps", (dir.path / "users").string());
    auto check = RecipientCheck::open(config);
    REQUIRE(check);
    CHECK(!check->exists("helpdesk@localhost"));
    dir.file("aliases", "helpdesk: root\n");
    REQUIRE(check->reload_if_changed());
    CHECK(check->exists("helpdesk@localhost"));
    fs::remove(aliases);
    REQUIRE(check->reload_if_changed());
    CHECK(check->tables_usable());
    CHECK(!check->exists("helpdesk@localhost"));
}
