// Unit tests for lib/maildir: MaildirWriter's tmp → new protocol and its
// S=/W= name fields, unique names, Maildir++ quota (maildirsize), and the
// virtual mailbox location.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "lib/maildir/maildir.hpp"
#include "lib/maildir/quota.hpp"

using namespace tern::maildir;
using tern::Result;
namespace fs = std::filesystem;

namespace {
struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/tern-maildir-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};

size_t count_files(const fs::path& dir) {
    size_t n = 0;
    for (auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
    return n;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
}  // namespace

TEST_CASE("maildir: writer delivers into new/ with S= and W=", "[maildir]") {
    TempDir t;
    std::string box = (t.path / "user" / "Maildir").string();
    REQUIRE(ensure_maildir(box));
    REQUIRE(fs::is_directory(box + "/cur"));
    REQUIRE(fs::is_directory(box + "/new"));
    REQUIRE(fs::is_directory(box + "/tmp"));
    CHECK((fs::status(box + "/new").permissions() & fs::perms::others_all) == fs::perms::none);

    auto w = MaildirWriter::create(box);
    REQUIRE(w);
    REQUIRE(w->write("Subject: hi\n\nline one\n"));
    REQUIRE(w->write("line two\n"));
    CHECK(count_files(box + "/tmp") == 1);
    CHECK(count_files(box + "/new") == 0);  // invisible until committed
    auto d = w->commit();
    REQUIRE(d);
    const std::string text = "Subject: hi\n\nline one\nline two\n";
    CHECK(d->size == text.size());
    CHECK(d->crlf_size == text.size() + 4);
    CHECK(d->path.find("/new/") != std::string::npos);
    CHECK(d->path.size() > 0);
    std::string name = fs::path(d->path).filename().string();
    CHECK(name.find(",S=" + std::to_string(text.size()) + ",W=" + std::to_string(text.size() + 4)) !=
          std::string::npos);
    CHECK(name.find('P' + std::to_string(::getpid()) + 'Q') != std::string::npos);
    CHECK(slurp(d->path) == text);
    CHECK(count_files(box + "/tmp") == 0);
    CHECK(count_files(box + "/new") == 1);
}

TEST_CASE("maildir: an uncommitted writer leaves nothing behind", "[maildir]") {
    TempDir t;
    std::string box = t.path.string();
    REQUIRE(ensure_maildir(box));
    {
        auto w = MaildirWriter::create(box);
        REQUIRE(w);
        REQUIRE(w->write("partial"));
    }
    CHECK(count_files(box + "/tmp") == 0);
    CHECK(count_files(box + "/new") == 0);
    auto w = MaildirWriter::create(box);
    REQUIRE(w);
    w->abort();
    CHECK(!w->write("x"));
    CHECK(!w->commit());
    CHECK(!MaildirWriter::create((t.path / "missing").string()));
}

TEST_CASE("maildir: unique names", "[maildir]") {
    std::set<std::string> names;
    for (int i = 0; i < 1000; ++i) names.insert(unique_name());
    CHECK(names.size() == 1000);
    for (const auto& n : names) {
        CHECK(n.find('/') == std::string::npos);
        CHECK(n.find(':') == std::string::npos);
    }
}

TEST_CASE("maildir: empty message", "[maildir]") {
    TempDir t;
    REQUIRE(ensure_maildir(t.path.string()));
    auto w = MaildirWriter::create(t.path.string());
    REQUIRE(w);
    auto d = w->commit();
    REQUIRE(d);
    CHECK(d->size == 0);
    CHECK(d->crlf_size == 0);
}

TEST_CASE("maildir++ quota: scan, maildirsize, recalculation", "[maildir]") {
    TempDir t;
    std::string box = t.path.string();
    REQUIRE(ensure_maildir(box));
    std::ofstream(box + "/cur/1.M1P1.h,S=100,W=104:2,S") << std::string(100, 'x');
    std::ofstream(box + "/new/2.M1P1.h") << std::string(50, 'y');  // no S=: stat
    fs::create_directories(box + "/.Sent/cur");
    std::ofstream(box + "/.Sent/cur/3.M1P1.h,S=25") << "z";
    auto usage = scan_usage(box);
    REQUIRE(usage);
    CHECK(usage->bytes == 175);
    CHECK(usage->messages == 3);

    // No quota: nothing read or written.
    CHECK(*quota_allows(box, 0, 1000000));
    CHECK(!fs::exists(box + "/maildirsize"));

    CHECK(*quota_allows(box, 200, 25));
    CHECK(!*quota_allows(box, 200, 26));
    REQUIRE(fs::exists(box + "/maildirsize"));
    CHECK(slurp(box + "/maildirsize") == "200S\n175 3\n");
    REQUIRE(quota_record(box, 200, 20, 1));
    CHECK(quota_usage(box, 200)->bytes == 195);
    CHECK(!*quota_allows(box, 200, 6));

    // A different limit forces a recount from the files (the recorded line was not a file).
    CHECK(quota_usage(box, 300)->bytes == 175);
    CHECK(slurp(box + "/maildirsize").rfind("300S\n", 0) == 0);
    // A garbled file is recalculated, not trusted.
    std::ofstream(box + "/maildirsize") << "300S\nnonsense\n";
    CHECK(quota_usage(box, 300)->bytes == 175);
    std::ofstream(box + "/maildirsize") << "300S\n-9999 -5\n";
    CHECK(quota_usage(box, 300)->bytes == 0);  // never negative
}

TEST_CASE("maildir: virtual mailbox location", "[maildir]") {
    CHECK(*virtual_maildir("/var/vmail", "Alice@Example.org") == "/var/vmail/example.org/alice");
    CHECK(*virtual_maildir("/var/vmail", "a@b", "/home/a") == "/home/a/Maildir");
    CHECK(!virtual_maildir("/var/vmail", "nodomain"));
    CHECK(!virtual_maildir("/var/vmail", "..@example.org"));
    CHECK(!virtual_maildir("/var/vmail", "a/b@example.org"));
    CHECK(!virtual_maildir("/var/vmail", "a@.."));
    CHECK(!virtual_maildir("/var/vmail", "@example.org"));
    CHECK(!virtual_maildir("/var/vmail", "a@b", "relative"));
}

namespace {
Result<DeliveredFile> deliver_keyed(const std::string& box, const DeliveryKey& key, const std::string& text) {
    auto w = MaildirWriter::create(box, delivery_name(key));
    if (!w) return w.error();
    if (auto s = w->write(text); !s) return s.error();
    return w->commit();
}
}  // namespace

TEST_CASE("maildir: a queue delivery is named after queue ID and recipient", "[maildir]") {
    DeliveryKey key{1700000000, "0123456789ABCD", 3, false};
    std::string name = delivery_name(key);
    CHECK(name.rfind("1700000000.0123456789ABCD_3.", 0) == 0);
    CHECK(name.find('/') == std::string::npos);
    CHECK(name.find(':') == std::string::npos);
    DeliveryKey other = key;
    other.recipient = 4;
    CHECK(delivery_name(other) != name);
    CHECK(delivery_name(key) == name);  // the same delivery, the same name
}

TEST_CASE("maildir: the same queue delivery twice leaves one copy", "[maildir]") {
    TempDir t;
    std::string box = (t.path / "Maildir").string();
    REQUIRE(ensure_maildir(box));
    DeliveryKey key{1700000000, "0123456789ABCD", 0, false};
    auto first = deliver_keyed(box, key, "Subject: x\n\nbody\n");
    REQUIRE(first);
    CHECK_FALSE(first->earlier);
    CHECK(fs::path(first->path).filename().string() == delivery_name(key) + ",S=17,W=20");
    // The retry finds it by its name in new/ (link EEXIST), even without a hint.
    auto again = deliver_keyed(box, key, "Subject: x\n\nbody\n");
    REQUIRE(again);
    CHECK(again->earlier);
    CHECK(again->path == first->path);
    CHECK(count_files(box + "/new") == 1);
    CHECK(count_files(box + "/tmp") == 0);
    // Another recipient of the same message is another delivery.
    DeliveryKey second = key;
    second.recipient = 1;
    auto other = deliver_keyed(box, second, "Subject: x\n\nbody\n");
    REQUIRE(other);
    CHECK_FALSE(other->earlier);
    CHECK(count_files(box + "/new") == 2);
}

TEST_CASE("maildir: find_delivered sees new/ and cur/ with flags, not other deliveries", "[maildir]") {
    TempDir t;
    std::string box = (t.path / "Maildir").string();
    REQUIRE(ensure_maildir(box));
    DeliveryKey key{1700000000, "0123456789ABCD", 2, true};
    auto none = find_delivered(box, key);
    REQUIRE(none);
    CHECK(none->empty());
    auto d = deliver_keyed(box, key, "hello\n");
    REQUIRE(d);
    auto in_new = find_delivered(box, key);
    REQUIRE(in_new);
    CHECK(*in_new == d->path);
    // A mail reader moved it to cur/ and set flags.
    std::string cur = box + "/cur/" + fs::path(d->path).filename().string() + ":2,RS";
    REQUIRE(::rename(d->path.c_str(), cur.c_str()) == 0);
    auto in_cur = find_delivered(box, key);
    REQUIRE(in_cur);
    CHECK(*in_cur == cur);
    // Prefixes of other deliveries do not match: recipient 2 is not 20, nor another queue ID.
    DeliveryKey twenty = key;
    twenty.recipient = 20;
    auto t20 = find_delivered(box, twenty);
    REQUIRE(t20);
    CHECK(t20->empty());
    DeliveryKey other = key;
    other.queue_id = "0123456789ABCE";
    auto o = find_delivered(box, other);
    REQUIRE(o);
    CHECK(o->empty());
    // An ordinary unique name is never taken for a queue delivery.
    auto w = MaildirWriter::create(box);
    REQUIRE(w);
    REQUIRE(w->write("x\n"));
    REQUIRE(w->commit());
    CHECK(count_files(box + "/new") == 1);
}
