// Unit tests for lib/config/services: services.conf fields, defaults,
// expansion, and the errors for hostile or broken lines.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <cctype>
#include <fstream>
#include <iterator>
#include <sstream>

#include "lib/config/services.hpp"

using namespace tern::config;

namespace {

Config dev_config() {
    Config c = Config::parse(
        "run_directory = /home/u/run/state\n"
        "default_user = alice\n"
        "myhostname = mail.tern.test\n",
        "tern.conf");
    REQUIRE(c.diagnostics().empty());
    return c;
}

std::string error_of(std::string_view text) {
    auto r = parse_services(text, "services.conf", dev_config());
    return r ? std::string("(no error)") : r.message();
}

bool error_has(std::string_view text, const std::string& part) {
    std::string e = error_of(text);
    INFO("input: " << text << "\nerror: " << e);
    return e.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("services.conf: a full valid file", "[services]") {
    auto r = parse_services(
        "# name      type  listen                       user  procs  command [args]\n"
        "smtp        inet  127.0.0.1:2525               -     2      smtpd\n"
        "submission  inet  127.0.0.1:2587,[::1]:2587    -     1      smtpd -o smtpd_mode=submission\n"
        "\n"
        "qmgr        unix  $run_directory/qmgr.sock     -     1      qmgr\n"
        "local       unix  ${run_directory}/local.sock  root  4      local-delivery\n"
        "   -o debug=yes\n"
        "cleanup     none  -                            -     -      some-daemon\n"
        "any         inet  0.0.0.0:25,[::]:25,:26,*:27  -     1      smtpd -o smtpd_banner=$myhostname\n",
        "services.conf", dev_config());
    REQUIRE(r);
    const auto& s = *r;
    REQUIRE(s.size() == 6);

    CHECK(s[0].name == "smtp");
    CHECK(s[0].type == ListenType::Inet);
    REQUIRE(s[0].listen.size() == 1);
    CHECK(s[0].listen[0].host == "127.0.0.1");
    CHECK(s[0].listen[0].port == 2525);
    CHECK(s[0].listen[0].to_string() == "127.0.0.1:2525");
    CHECK(s[0].user == "alice");
    CHECK(s[0].process_count == 2);
    CHECK(s[0].command == "smtpd");
    CHECK(s[0].args.empty());
    CHECK(s[0].line == 2);

    REQUIRE(s[1].listen.size() == 2);
    CHECK(s[1].listen[1].host == "::1");
    CHECK(s[1].listen[1].port == 2587);
    CHECK(s[1].listen[1].to_string() == "[::1]:2587");
    CHECK(s[1].args == std::vector<std::string>{"-o", "smtpd_mode=submission"});

    CHECK(s[2].type == ListenType::Unix);
    REQUIRE(s[2].listen.size() == 1);
    CHECK(s[2].listen[0].path == "/home/u/run/state/qmgr.sock");
    CHECK(s[2].listen[0].to_string() == "/home/u/run/state/qmgr.sock");
    CHECK(s[2].line == 5);

    CHECK(s[3].user == "root");
    CHECK(s[3].process_count == 4);
    CHECK(s[3].command == "local-delivery");
    CHECK(s[3].args == std::vector<std::string>{"-o", "debug=yes"});  // from the continuation line
    CHECK(s[3].source_line.find("-o debug=yes") != std::string::npos);

    CHECK(s[4].type == ListenType::None);
    CHECK(s[4].listen.empty());
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK(s[4].process_count == (cores < 2 ? 1 : (cores + 1) / 2));  // half the cores, rounded up

    REQUIRE(s[5].listen.size() == 4);
    CHECK(s[5].listen[0].host == "0.0.0.0");
    CHECK(s[5].listen[1].host == "::");
    CHECK(s[5].listen[1].to_string() == "[::]:25");
    CHECK(s[5].listen[2].host.empty());
    CHECK(s[5].listen[2].port == 26);
    CHECK(s[5].listen[3].host.empty());
    CHECK(s[5].args == std::vector<std::string>{"-o", "smtpd_banner=mail.tern.test"});
}

TEST_CASE("services.conf: an unchanged line compares equal, a changed one does not", "[services]") {
    auto a = parse_services("smtp inet 127.0.0.1:25 - 1 smtpd\n", "services.conf", dev_config());
    auto b = parse_services("\n# moved down\nsmtp inet 127.0.0.1:25 - 1 smtpd\n", "services.conf", dev_config());
    auto c = parse_services("smtp inet 127.0.0.1:25 - 2 smtpd\n", "services.conf", dev_config());
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(c);
    CHECK((*a)[0].source_line == (*b)[0].source_line);
    CHECK((*a)[0].source_line != (*c)[0].source_line);
    CHECK_FALSE((*a)[0] == (*c)[0]);
}

TEST_CASE("services.conf: errors name file:line", "[services]") {
    CHECK(error_has("smtp inet 127.0.0.1:25 - 1 smtpd\nsmtp inet 127.0.0.1:26 - 1 smtpd\n",
                    "services.conf:2: duplicate service name 'smtp' (first defined at line 1)"));
    CHECK(error_has("\n\nx tcp 127.0.0.1:25 - 1 smtpd\n", "services.conf:3: bad service type 'tcp'"));
    CHECK(error_has("x inet 127.0.0.1:25 - 1\n", "services.conf:1: missing field 'command'"));
    CHECK(error_has("x\n", "missing field 'type'"));
    CHECK(error_has("x inet\n", "missing field 'listen'"));
    CHECK(error_has("  x inet 127.0.0.1:25 - 1 smtpd\n", "continuation line without"));
    // Every bad line is reported, not just the first.
    std::string e = error_of("a bad - - 1 x\nb inet 1.2.3.4:0 - 1 x\n");
    CHECK(e.find("services.conf:1:") != std::string::npos);
    CHECK(e.find("services.conf:2:") != std::string::npos);
}

TEST_CASE("services.conf: bad addresses and ports", "[services]") {
    CHECK(error_has("x inet 127.0.0.1:0 - 1 smtpd\n", "bad port '0'"));
    CHECK(error_has("x inet 127.0.0.1:65536 - 1 smtpd\n", "bad port"));
    CHECK(error_has("x inet 127.0.0.1:25x - 1 smtpd\n", "bad port"));
    CHECK(error_has("x inet 127.0.0.1: - 1 smtpd\n", "bad port"));
    CHECK(error_has("x inet 127.0.0.1 - 1 smtpd\n", "expected host:port"));
    CHECK(error_has("x inet 999.0.0.1:25 - 1 smtpd\n", "bad IPv4 address"));
    CHECK(error_has("x inet localhost:25 - 1 smtpd\n", "not a name"));
    CHECK(error_has("x inet ::1:25 - 1 smtpd\n", "[addr]:port"));
    CHECK(error_has("x inet [::1]25 - 1 smtpd\n", "[addr]:port"));
    CHECK(error_has("x inet [::1 - 1 smtpd\n", "[addr]:port"));
    CHECK(error_has("x inet [zz::1]:25 - 1 smtpd\n", "bad IPv6 address"));
    CHECK(error_has("x inet 127.0.0.1:25,,127.0.0.1:26 - 1 smtpd\n", "expected host:port"));
    CHECK(error_has("x inet - - 1 smtpd\n", "needs a listen address"));
    CHECK(error_has("x unix relative.sock - 1 qmgr\n", "must be absolute"));
    CHECK(error_has("x unix $nosuch/q.sock - 1 qmgr\n", "unknown parameter $nosuch"));
    CHECK(error_has("x unix /" + std::string(200, 'a') + " - 1 qmgr\n", "path too long"));
    CHECK(error_has("x none 127.0.0.1:25 - 1 d\n", "type none takes '-'"));
    CHECK(error_has("a inet 127.0.0.1:25 - 1 smtpd\nb inet 127.0.0.1:25 - 1 smtpd\n",
                    "127.0.0.1:25 is already used by service 'a'"));
}

TEST_CASE("services.conf: bad counts, users, commands and options", "[services]") {
    CHECK(error_has("x none - - 0 d\n", "bad process count '0'"));
    CHECK(error_has("x none - - -3 d\n", "bad process count"));
    CHECK(error_has("x none - - 99999999999 d\n", "bad process count"));
    CHECK(error_has("x none - - two d\n", "bad process count"));
    CHECK(error_has("x none - - 2000 d\n", "bad process count"));
    CHECK(error_has("x none - us/er 1 d\n", "bad user name"));
    CHECK(error_has("x none - - 1 /bin/sh\n", "bad command '/bin/sh'"));
    CHECK(error_has("x none - - 1 ../d\n", "bad command"));
    CHECK(error_has("x/y none - - 1 d\n", "bad service name"));
    CHECK(error_has("x none - - 1 d -o smtpd_moed=smtps\n", "unknown key 'smtpd_moed'"));
    CHECK(error_has("x none - - 1 d -o smtpd_timeout=soon\n", "smtpd_timeout"));
    CHECK(error_has("x none - - 1 d -o\n", "-o needs key=value"));
    CHECK(error_has("x none - - 1 d $nosuch\n", "unknown parameter $nosuch in arguments"));
}

TEST_CASE("services.conf: load_services reads config_directory/services.conf", "[services]") {
    char tmpl[] = "/tmp/tern-services-test.XXXXXX";
    std::filesystem::path dir = mkdtemp(tmpl);
    {
        std::ofstream(dir / "tern.conf") << "run_directory = $config_directory/state\n";
        std::ofstream(dir / "services.conf") << "qmgr unix $run_directory/qmgr.sock - 1 qmgr\n";
    }
    auto config = Config::load(dir.string());
    REQUIRE(config);
    auto services = load_services(*config);
    REQUIRE(services);
    REQUIRE(services->size() == 1);
    CHECK((*services)[0].listen[0].path == dir.string() + "/state/qmgr.sock");
    std::filesystem::remove(dir / "services.conf");
    auto missing = load_services(*config);
    REQUIRE_FALSE(missing);
    CHECK(missing.message().find("services.conf") != std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("services.conf: hostile input never crashes", "[services]") {
    std::string junk;
    for (int i = 0; i < 256; ++i) junk += static_cast<char>(i);
    const std::string inputs[] = {
        junk,
        std::string("smtp inet 127.0.0.1:25\0 - 1 smtpd\n", 35),
        "smtp inet [:25 - 1 smtpd\n",
        "smtp inet []:25 - 1 smtpd\n",
        "smtp inet ]:25 - 1 smtpd\n",
        "smtp inet " + std::string(10000, ',') + " - 1 smtpd\n",
        "smtp unix ${run_directory?${run_directory:}} - 1 smtpd\n",
        std::string(5000, '\n') + "\t\t\n",
    };
    for (const auto& in : inputs) {
        auto r = parse_services(in, "services.conf", dev_config());
        (void)r;
        SUCCEED();
    }
}

namespace {

// The checkout's conf/ directory: tests run from the top of the checkout.
std::filesystem::path conf_dir() {
    for (std::filesystem::path p : {std::filesystem::path("conf"), std::filesystem::path(__FILE__).parent_path() / "../../../conf"})
        if (std::filesystem::exists(p / "tern.conf")) return std::filesystem::canonical(p);
    FAIL("conf/tern.conf not found; run build/unit-tests from the top of the checkout");
    return {};
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// "#smtp  inet ..." -> "smtp  inet ...": the commented-out services must stay valid too.
std::string uncomment_services(const std::string& text) {
    std::string out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.size() > 1 && line[0] == '#' && std::isalpha(static_cast<unsigned char>(line[1]))) line.erase(0, 1);
        out += line + "\n";
    }
    return out;
}

}  // namespace

TEST_CASE("shipped conf/tern.conf shows the real defaults", "[config]") {
    auto dir = conf_dir();
    std::string text = read_file(dir / "tern.conf");
    auto loaded = Config::load(dir.string());
    REQUIRE(loaded);
    CHECK(loaded->effective(true).empty());  // everything is commented out

    // Every "#key = value" line names a real key and shows its default.
    std::istringstream in(text);
    int shown = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.size() < 2 || line[0] != '#' || !std::islower(static_cast<unsigned char>(line[1]))) continue;
        auto eq = line.find(" =");
        if (eq == std::string::npos) continue;
        std::string key = line.substr(1, eq - 1);
        std::string value = line.substr(std::min(line.size(), eq + 3));
        const KeyInfo* info = find_key(key);
        INFO("conf/tern.conf: " << line);
        REQUIRE(info != nullptr);
        if (key != "myhostname" && key != "mydomain") CHECK(value == info->default_value);
        ++shown;
    }
    CHECK(shown >= 50);
}

TEST_CASE("shipped services.conf files parse", "[services]") {
    auto dir = conf_dir();
    auto installed = Config::load(dir.string());
    REQUIRE(installed);
    auto services = load_services(*installed);
    INFO((services ? "" : services.message()));
    REQUIRE(services);
    std::vector<std::string> names;
    for (const auto& s : *services) names.push_back(s.name);
    CHECK(names == std::vector<std::string>{"smtp", "submission", "smtps", "qmgr", "pickup", "local", "auth", "user-session", "smtp-client", "imap", "imaps", "pop3", "pop3s"});
    CHECK((*services)[6].user == "tern-auth");
    CHECK((*services)[7].user == "root");  // user-session switches to system users
    CHECK((*services)[0].listen.size() == 2);
    CHECK((*services)[0].listen[1].to_string() == "[::]:25");
    CHECK((*services)[3].listen[0].path == "/run/tern/qmgr.sock");
    CHECK((*services)[5].user == "root");
    auto future = parse_services(uncomment_services(read_file(dir / "services.conf")), "services.conf", *installed);
    INFO((future ? "" : future.message()));
    CHECK(future);

    auto dev = Config::load((dir / "dev").string());
    INFO((dev ? "" : dev.message()));
    REQUIRE(dev);
    CHECK(dev->get("queue_directory") == (dir / "dev/../spool").lexically_normal().string());
    CHECK(dev->get("myhostname") == "mail.tern.test");
    CHECK(dev->get_list("virtual_mailbox_domains") == std::vector<std::string>{"tern.test"});
    auto dev_services = load_services(*dev);
    INFO((dev_services ? "" : dev_services.message()));
    REQUIRE(dev_services);
    for (const auto& s : *dev_services)
        for (const auto& a : s.listen)
            if (s.type == ListenType::Inet) CHECK(a.host == "127.0.0.1");
    CHECK((*dev_services)[0].listen[0].port == 2525);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK((*dev_services)[0].process_count == (cores < 2 ? 1 : (cores + 1) / 2));
    auto dev_future =
        parse_services(uncomment_services(read_file(dir / "dev/services.conf")), "services.conf", *dev);
    INFO((dev_future ? "" : dev_future.message()));
    CHECK(dev_future);
}
