// Unit tests for lib/mbox: mboxrd "From " quoting across arbitrary chunk
// boundaries, the separator line, appending with dot-lock and fcntl lock,
// stale locks, busy locks, size limits and rollback to the original size.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "lib/mbox/mbox.hpp"

using namespace tern::mbox;
namespace fs = std::filesystem;

namespace {
struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/tern-mbox-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string quote_in_pieces(const std::string& in, size_t piece) {
    FromQuoter q;
    std::string out;
    for (size_t i = 0; i < in.size(); i += piece) q.feed(std::string_view(in).substr(i, piece), out);
    q.finish(out);
    return out;
}

OpenOptions fast_options() {
    OpenOptions o;
    o.lock.attempts = 2;
    o.lock.delay = std::chrono::milliseconds(10);
    return o;
}
}  // namespace

TEST_CASE("mbox: From quoting (mboxrd) in any chunking", "[mbox]") {
    const std::string in =
        "From me\nbody\nFrom the start\n>From quoted\n>>From twice\nFro\nFrom\n From not\nXFrom x\n>From";
    const std::string expected =
        ">From me\nbody\n>From the start\n>>From quoted\n>>>From twice\nFro\nFrom\n From not\nXFrom x\n>From";
    for (size_t piece : {1, 2, 3, 5, 7, 64, 4096}) CHECK(quote_in_pieces(in, piece) == expected);
    CHECK(quote_in_pieces("", 1).empty());
    CHECK(quote_in_pieces("\n\n", 1) == "\n\n");
    CHECK(quote_in_pieces(">>>>", 1) == ">>>>");
}

TEST_CASE("mbox: separator line", "[mbox]") {
    auto line = separator_line("a@b", 0);
    CHECK(line.rfind("From a@b ", 0) == 0);
    CHECK(line.back() == '\n');
    CHECK(line.find("1970") != std::string::npos);
    CHECK(separator_line("", 0).rfind("From MAILER-DAEMON ", 0) == 0);
    CHECK(separator_line("a b\nc", 0).rfind("From a_b_c ", 0) == 0);
}

TEST_CASE("mbox: append two messages, blank-line separated, locks released", "[mbox]") {
    TempDir t;
    std::string box = (t.path / "user").string();
    for (int i = 0; i < 2; ++i) {
        auto a = MboxAppender::open(box, fast_options());
        REQUIRE(a);
        CHECK(fs::exists(box + ".lock"));
        REQUIRE(a->begin("s@x", 0));
        REQUIRE(a->write("Subject: " + std::to_string(i) + "\n\nFrom here\nno newline at end"));
        REQUIRE(a->commit());
    }
    CHECK(!fs::exists(box + ".lock"));
    std::string text = slurp(box);
    auto sep = separator_line("s@x", 0);
    CHECK(text == sep + "Subject: 0\n\n>From here\nno newline at end\n\n" + sep +
                      "Subject: 1\n\n>From here\nno newline at end\n\n");
    CHECK((fs::status(box).permissions() & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none);
}

TEST_CASE("mbox: an aborted append is truncated away", "[mbox]") {
    TempDir t;
    std::string box = (t.path / "user").string();
    std::ofstream(box) << "From old Thu Jan  1 00:00:00 1970\nold\n\n";
    auto before = slurp(box);
    {
        auto a = MboxAppender::open(box, fast_options());
        REQUIRE(a);
        CHECK(a->original_size() == before.size());
        REQUIRE(a->begin("s@x", 0));
        REQUIRE(a->write("half a message"));
    }  // no commit
    CHECK(slurp(box) == before);
    CHECK(!fs::exists(box + ".lock"));
}

TEST_CASE("mbox: size limit fails with TooBig and rolls back", "[mbox]") {
    TempDir t;
    std::string box = (t.path / "user").string();
    auto opt = fast_options();
    opt.size_limit = 100;
    auto a = MboxAppender::open(box, opt);
    REQUIRE(a);
    REQUIRE(a->begin("s@x", 0));
    auto st = a->write(std::string(200, 'x'));
    CHECK(!st);
    CHECK(a->failure() == Failure::TooBig);
    a->rollback();
    CHECK(fs::file_size(box) == 0);
}

TEST_CASE("mbox: busy and stale dot-locks", "[mbox]") {
    TempDir t;
    std::string box = (t.path / "user").string();
    std::ofstream(box + ".lock") << "12345\n";
    Failure f = Failure::None;
    auto a = MboxAppender::open(box, fast_options(), &f);
    CHECK(!a);
    CHECK(f == Failure::LockBusy);
    CHECK(fs::exists(box + ".lock"));  // not ours to remove while fresh

    // Old enough to be stale: removed and the delivery proceeds.
    struct timespec old[2] = {{1000, 0}, {1000, 0}};
    ::utimensat(AT_FDCWD, (box + ".lock").c_str(), old, 0);
    auto b = MboxAppender::open(box, fast_options(), &f);
    REQUIRE(b);
    CHECK(f == Failure::None);
}

TEST_CASE("mbox: fcntl lock held by another process means busy", "[mbox]") {
    TempDir t;
    std::string box = (t.path / "user").string();
    std::ofstream(box) << "";
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    pid_t child = ::fork();
    if (child == 0) {
        int fd = ::open(box.c_str(), O_RDWR);
        struct flock fl {};
        fl.l_type = F_WRLCK;
        ::fcntl(fd, F_SETLK, &fl);
        (void)!::write(ready[1], "x", 1);
        ::sleep(5);
        ::_exit(0);
    }
    char c;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    auto o = fast_options();
    o.lock.dotlock = false;
    Failure f = Failure::None;
    auto a = MboxAppender::open(box, o, &f);
    CHECK(!a);
    CHECK(f == Failure::LockBusy);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    ::close(ready[0]);
    ::close(ready[1]);
}

TEST_CASE("mbox: symlinks, hard links and wrong owners are refused", "[mbox]") {
    TempDir t;
    std::string target = (t.path / "target").string();
    std::ofstream(target) << "";
    std::string link = (t.path / "link").string();
    fs::create_symlink(target, link);
    Failure f = Failure::None;
    CHECK(!MboxAppender::open(link, fast_options(), &f));
    CHECK(f == Failure::BadFile);
    std::string hard = (t.path / "hard").string();
    fs::create_hard_link(target, hard);
    CHECK(!MboxAppender::open(hard, fast_options(), &f));
    CHECK(f == Failure::BadFile);
    std::string own = (t.path / "own").string();
    std::ofstream(own) << "";
    auto o = fast_options();
    o.owner = ::getuid() + 1;
    CHECK(!MboxAppender::open(own, o, &f));
    CHECK(f == Failure::BadFile);
}
