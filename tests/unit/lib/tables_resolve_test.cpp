// Unit tests for recipient resolution (aliases → :include: → users →
// mailboxes, loop guards, command/file restrictions) and forwarding-loop
// detection.  The resolver lives in local-delivery/ (only that daemon uses
// it) and the unit-test binary links only libtern.a, so its sources are
// compiled into this test directly.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <sys/stat.h>

#include <filesystem>
#include <future>
#include <thread>
#include <utility>
#include <fstream>
#include <string>

#include "lib/config/config.hpp"
#include "lib/tables/recipient_check.hpp"
#include "local-delivery/identity.cpp"
#include "local-delivery/message.cpp"
#include "local-delivery/resolve.cpp"

using namespace tern;
using namespace tern::local;
namespace fs = std::filesystem;

namespace {

struct Fixture {
    fs::path dir;
    std::string me;
    Settings settings;
    std::optional<tables::RecipientCheck> check;

    explicit Fixture(const std::string& aliases, const std::string& users = "alice@virt.test:{PLAIN}x::::quota=1k\n") {
        char tmpl[] = "/tmp/tern-resolve-XXXXXX";
        dir = ::mkdtemp(tmpl);
        me = current_identity().name;
        write("aliases", aliases);
        write("users", users);
        auto config = config::Config::parse("", "test");
        config.set("mydestination", "localhost, local.test");
        config.set("virtual_mailbox_domains", "virt.test");
        config.set("alias_maps", (dir / "aliases").string());
        config.set("virtual_mailbox_maps", (dir / "users").string());
        auto c = tables::RecipientCheck::open(config);
        REQUIRE(c);
        check.emplace(std::move(*c));
        settings.mail_spool_directory = (dir / "spool").string();
        settings.mail_directory = (dir / "vmail").string();
        settings.vmail_user = me;
        settings.default_privs = ::getpwnam("nobody") ? "nobody" : me;
        settings.delimiters = "+";
        settings.allow_commands = {"alias", "forward", "include"};
        settings.allow_files = {"alias", "forward"};
        settings.virtual_mailbox_limit = 5000;
    }
    ~Fixture() { fs::remove_all(dir); }
    std::string write(const std::string& name, const std::string& text) {
        std::ofstream(dir / name) << text;
        return (dir / name).string();
    }
    Resolution resolve(const std::string& address) { return Resolver(*check, settings).resolve(address); }
};

}  // namespace

TEST_CASE("resolve: local user, extension, mbox path", "[tables][resolve]") {
    Fixture f("");
    auto r = f.resolve(f.me + "+news@local.test");
    REQUIRE(!r.failure);
    REQUIRE(r.destinations.size() == 1);
    CHECK(r.destinations[0].kind == DestKind::Mailbox);
    CHECK(r.destinations[0].path == f.settings.mail_spool_directory + "/" + f.me);
    CHECK(r.destinations[0].extension == "news");

    f.settings.home_mailbox = "Maildir/";
    r = f.resolve(f.me + "@localhost");
    REQUIRE(r.destinations.size() == 1);
    CHECK(r.destinations[0].kind == DestKind::HomeMaildir);
    CHECK(r.destinations[0].path.size() > 8);
    CHECK(r.destinations[0].path.substr(r.destinations[0].path.size() - 8) == "/Maildir");
}

TEST_CASE("resolve: unknown users bounce with 5.1.1", "[tables][resolve]") {
    Fixture f("");
    auto r = f.resolve("no-such-user-xyzzy@local.test");
    REQUIRE(r.failure);
    CHECK(r.failure->outcome == delivery::Outcome::Bounced);
    CHECK(r.failure->dsn == "5.1.1");
    r = f.resolve("bob@virt.test");
    REQUIRE(r.failure);
    CHECK(r.failure->dsn == "5.1.1");
    r = f.resolve("../../etc@local.test");
    REQUIRE(r.failure);
    CHECK(r.failure->dsn == "5.1.1");
}

TEST_CASE("resolve: aliases, :include:, virtual users, forwarding", "[tables][resolve]") {
    Fixture probe("");
    std::string list = probe.write("team.list", "# members\nalice@virt.test\nfriend@remote.example\n");
    Fixture f("team: " + probe.me + ", :include:" + list + ", alice@virt.test\n" +
              "sales@virt.test: alice+sales@virt.test\n");
    auto r = f.resolve("TEAM@local.test");
    REQUIRE(!r.failure);
    REQUIRE(r.destinations.size() == 3);  // alice twice collapses to one
    CHECK(r.destinations[0].kind == DestKind::Mailbox);
    CHECK(r.destinations[1].kind == DestKind::VirtualMailbox);
    CHECK(r.destinations[1].path == f.settings.mail_directory + "/virt.test/alice");
    CHECK(r.destinations[1].quota == 1024);  // from the users table, not virtual_mailbox_limit
    CHECK(r.destinations[2].kind == DestKind::Forward);
    CHECK(r.destinations[2].path == "friend@remote.example");

    r = f.resolve("sales@virt.test");
    REQUIRE(!r.failure);
    REQUIRE(r.destinations.size() == 1);
    CHECK(r.destinations[0].kind == DestKind::VirtualMailbox);
    CHECK(r.destinations[0].extension == "sales");

    r = f.resolve("postmaster@virt.test");  // not in the tables: the local postmaster (root)
    REQUIRE(!r.failure);
    REQUIRE(r.destinations.size() == 1);
    CHECK(r.destinations[0].path == f.settings.mail_spool_directory + "/root");
}

TEST_CASE("resolve: alias loops terminate", "[tables][resolve]") {
    Fixture f("x: y\ny: x\n");
    auto r = f.resolve("x@local.test");
    REQUIRE(r.failure);  // neither x nor y is a user
    CHECK(r.failure->outcome == delivery::Outcome::Bounced);

    // A user's alias naming the user again: the mailbox, not another round.
    Fixture self(f.me + ": " + f.me + ", alice@virt.test\n");
    r = self.resolve(f.me + "@localhost");
    REQUIRE(!r.failure);
    REQUIRE(r.destinations.size() == 2);
    CHECK(r.destinations[0].kind == DestKind::Mailbox);

    std::string deep;
    for (int i = 0; i < 30; ++i) deep += "a" + std::to_string(i) + ": a" + std::to_string(i + 1) + "\n";
    Fixture d(deep);
    r = d.resolve("a0@localhost");
    REQUIRE(r.failure);
    CHECK(r.failure->dsn == "5.4.6");
}

TEST_CASE("resolve: commands and files need a trusted source and permission", "[tables][resolve]") {
    Fixture f("cmd: \"|cat > /dev/null\"\nfile: /tmp/x.mbox\nmd: /tmp/box/\n");
    auto r = f.resolve("cmd@localhost");
    REQUIRE(!r.failure);
    REQUIRE(r.destinations.size() == 1);
    CHECK(r.destinations[0].kind == DestKind::Command);
    CHECK(r.destinations[0].path == "cat > /dev/null");
    if (running_as_root()) CHECK(r.destinations[0].as.name == f.settings.default_privs);  // never root
    CHECK(r.destinations[0].as.uid != 0);
    r = f.resolve("md@localhost");
    REQUIRE(r.destinations.size() == 1);
    CHECK(r.destinations[0].kind == DestKind::FileMaildir);

    f.settings.allow_commands.clear();
    r = f.resolve("cmd@localhost");
    REQUIRE(r.failure);
    CHECK(r.failure->dsn == "5.7.1");
    f.settings.allow_files = {"forward"};
    r = f.resolve("file@localhost");
    REQUIRE(r.failure);
    CHECK(r.failure->dsn == "5.7.1");
}

TEST_CASE("resolve: a world-writable :include: file cannot run commands", "[tables][resolve]") {
    Fixture probe("");
    std::string list = probe.write("open.list", "\"|cat > /dev/null\"\n");
    fs::permissions(list, fs::perms::all);
    Fixture f("inc: :include:" + list + "\n");
    auto r = f.resolve("inc@localhost");
    REQUIRE(r.failure);
    CHECK(r.failure->dsn == "5.7.1");
}

TEST_CASE("resolve: stale tables defer instead of guessing", "[tables][resolve]") {
    Fixture f("a: " + Fixture("").me + "\n");
    REQUIRE(!f.resolve("a@localhost").failure);
    // Edit the source and make the rebuild fail (its temporary file name is
    // taken by a directory — works even as root, who ignores permissions).
    f.write("aliases", "a: somebody-else\n");
    struct timespec later[2];
    ::clock_gettime(CLOCK_REALTIME, &later[0]);
    later[0].tv_sec += 5;
    later[1] = later[0];
    ::utimensat(AT_FDCWD, (f.dir / "aliases").c_str(), later, 0);
    fs::create_directory(f.dir / ("aliases.lmdb.tmp." + std::to_string(::getpid())));
    fs::create_directory(f.dir / ("aliases.lmdb.tmp." + std::to_string(::getpid())) / "x");
    CHECK(!f.check->reload_if_changed());
    CHECK(!f.check->tables_usable());
    auto r = f.resolve("a@localhost");
    REQUIRE(r.failure);
    CHECK(r.failure->outcome == delivery::Outcome::Deferred);
    CHECK(f.check->check("a@localhost") == tables::RecipientCheck::Answer::Unavailable);
    CHECK(f.check->exists("a@localhost"));  // smtpd must not 550 on a table it cannot trust
    // Once the rebuild can happen, the table is back.
    fs::remove_all(f.dir / ("aliases.lmdb.tmp." + std::to_string(::getpid())));
    CHECK(f.check->reload_if_changed());
    CHECK(f.check->tables_usable());
}

TEST_CASE("forwarding loop detection reads only the header section", "[tables][resolve]") {
    char tmpl[] = "/tmp/tern-loop-XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    std::string text =
        "Received: x\nDELIVERED-TO:  <Alice@Virt.test> \nSubject: s\n\nDelivered-To: bob@virt.test\n";
    REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    auto queued = read_queued(fd);
    REQUIRE(queued.ok());
    CHECK(queued->complete);
    CHECK(queued->size == text.size());
    CHECK(has_delivered_to(*queued, "alice@virt.test"));
    CHECK(!has_delivered_to(*queued, "bob@virt.test"));  // in the body
    CHECK(!has_delivered_to(*queued, "alice@virt.tes"));
    std::string copied;
    int pieces = 0;
    REQUIRE(copy_message(*queued, delivery_headers("s@x", "r@y"), [&](std::string_view p) {
        copied.append(p);
        ++pieces;
        return Status{};
    }));
    CHECK(copied == "Return-Path: <s@x>\nDelivered-To: r@y\n" + text);
    CHECK(pieces == 1);  // a small message is written in one piece
    ::close(fd);
    ::unlink(tmpl);
}

TEST_CASE("a message larger than one read streams after its header section", "[tables][resolve]") {
    char tmpl[] = "/tmp/tern-large-XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    std::string text = "Subject: big\nDelivered-To: carol@virt.test\n\n";
    for (int i = 0; text.size() < 200 * 1024; ++i) text += "line " + std::to_string(i) + " of a long body\n";
    REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    auto queued = read_queued(fd);
    REQUIRE(queued.ok());
    CHECK_FALSE(queued->complete);
    CHECK(queued->size == text.size());
    CHECK(queued->head.size() < text.size());
    CHECK(has_delivered_to(*queued, "carol@virt.test"));
    std::string copied;
    REQUIRE(copy_message(*queued, "Delivered-To: d@y\n", [&](std::string_view p) {
        copied.append(p);
        return Status{};
    }));
    CHECK(copied == "Delivered-To: d@y\n" + text);
    ::close(fd);
    ::unlink(tmpl);
}

TEST_CASE("AsUser switches only the calling thread, and back", "[tables][resolve]") {
    if (::getuid() != 0) {
        WARN("needs root to switch users: not checked");
        return;
    }
    // A thread that exists before the switch (a new one inherits its creator's ids).
    std::promise<void> asked;
    std::promise<std::pair<uid_t, gid_t>> answered;
    std::thread other([&] {
        asked.get_future().wait();
        answered.set_value({::geteuid(), ::getegid()});
    });
    bool was_asked = false;
    auto other_thread_ids = [&] {
        asked.set_value();
        was_asked = true;
        return answered.get_future().get();
    };
    struct Joiner {  // a failed REQUIRE must not leave the thread unjoined
        std::thread& t;
        std::promise<void>& asked;
        bool& was_asked;
        ~Joiner() {
            if (!was_asked) asked.set_value();
            t.join();
        }
    } joiner{other, asked, was_asked};
    int groups_before = ::getgroups(0, nullptr);
    {
        AsUser as(Identity{65534, 65534, "nobody", "/"});
        REQUIRE(as.ok());
        CHECK(::geteuid() == 65534);
        CHECK(::getegid() == 65534);
        // A file made now belongs to the recipient ...
        char tmpl[] = "/tmp/tern-asuser-XXXXXX";
        int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        struct stat st {};
        REQUIRE(::fstat(fd, &st) == 0);
        CHECK(st.st_uid == 65534);
        ::close(fd);
        ::unlink(tmpl);
        // ... and the other threads stay root (glibc would have switched them all).
        CHECK(other_thread_ids() == std::pair<uid_t, gid_t>{0, 0});
    }
    CHECK(::geteuid() == 0);
    CHECK(::getegid() == 0);
    CHECK(::getgroups(0, nullptr) == groups_before);
}
