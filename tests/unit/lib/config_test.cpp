// Unit tests for lib/config/config: tern.conf syntax, $key expansion, value
// kinds, diagnostics with file:line, overrides and the key table itself.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "lib/config/config.hpp"

using namespace tern::config;
using namespace std::chrono_literals;

namespace {

bool has_diag(const Config& c, int line, const std::string& part) {
    for (const auto& d : c.diagnostics())
        if (d.line == line && d.message.find(part) != std::string::npos) return true;
    return false;
}

std::string all_diags(const Config& c) {
    std::string s;
    for (const auto& d : c.diagnostics()) s += d.to_string() + "\n";
    return s;
}

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        char tmpl[] = "/tmp/tern-config-test.XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    void write(const std::string& name, const std::string& text) const {
        std::ofstream(path / name, std::ios::binary) << text;
    }
};

}  // namespace

TEST_CASE("key table is sorted, unique, and every default is valid", "[config]") {
    const auto& keys = all_keys();
    REQUIRE(keys.size() >= 55);
    for (size_t i = 1; i < keys.size(); ++i) {
        INFO("key " << keys[i].name << " after " << keys[i - 1].name);
        CHECK(keys[i - 1].name < keys[i].name);
    }
    for (const auto& k : keys) {
        INFO("key " << k.name);
        CHECK(!k.doc.empty());
        CHECK(find_key(k.name) == &k);
    }
    CHECK(find_key("no_such_key") == nullptr);
    Config c = Config::parse("", "tern.conf");
    INFO(all_diags(c));
    CHECK(c.diagnostics().empty());
}

TEST_CASE("defaults", "[config]") {
    Config c = Config::parse("", "tern.conf");
    CHECK(c.get("queue_directory") == "/var/spool/tern");
    CHECK(c.get_duration("smtpd_timeout") == 300s);
    CHECK(c.get_duration("maximal_queue_lifetime") == std::chrono::seconds(5 * 86400));
    CHECK(c.get_size("message_size_limit") == 10240000u);
    CHECK(c.get_int("smtpd_recipient_limit") == 1000);
    CHECK_FALSE(c.get_bool("debug"));
    CHECK(c.get_list("allow_mail_to_commands") == std::vector<std::string>{"alias", "forward"});
    CHECK(c.get_list("mynetworks") == std::vector<std::string>{"127.0.0.0/8", "[::1]/128"});
    CHECK(c.get_list("virtual_mailbox_domains").empty());
    CHECK_FALSE(c.is_set("queue_directory"));
    CHECK(c.get("smtpd_banner") == c.get("myhostname") + " ESMTP tern");
}

TEST_CASE("myhostname and mydomain defaults", "[config]") {
    Config c = Config::parse("", "tern.conf");
    char buf[256] = {};
    REQUIRE(gethostname(buf, sizeof buf - 1) == 0);
    CHECK(c.get("myhostname") == buf);
    std::string host = buf;
    auto dot = host.find('.');
    CHECK(c.get("mydomain") == (dot == std::string::npos ? "localdomain" : host.substr(dot + 1)));

    Config d = Config::parse("myhostname = mail.example.org\n", "tern.conf");
    CHECK(d.get("mydomain") == "example.org");
    CHECK(d.get("myorigin") == "mail.example.org");
    CHECK(d.get_list("mydestination") ==
          std::vector<std::string>{"mail.example.org", "localhost.example.org", "localhost"});
    Config e = Config::parse("myhostname = single\n", "tern.conf");
    CHECK(e.get("mydomain") == "localdomain");
}

TEST_CASE("basic syntax: comments, blank lines, white space, last wins", "[config]") {
    Config c = Config::parse(
        "# a comment\n"
        "\n"
        "   # an indented comment\n"
        "myhostname=mx.example.com\n"
        "smtpd_banner   =   hello   world   \n"
        "debug = yes\r\n"
        "smtpd_recipient_limit = 10\n"
        "smtpd_recipient_limit = 20\n",
        "tern.conf");
    INFO(all_diags(c));
    CHECK(c.diagnostics().empty());
    CHECK(c.get("myhostname") == "mx.example.com");
    CHECK(c.get("smtpd_banner") == "hello   world");
    CHECK(c.get_bool("debug"));
    CHECK(c.get_int("smtpd_recipient_limit") == 20);
    CHECK(c.is_set("debug"));
}

TEST_CASE("continuation lines join with a space", "[config]") {
    Config c = Config::parse(
        "mydestination = a.example,\n"
        "    b.example,\n"
        "# comments inside do not end the value\n"
        "\tc.example\n"
        "debug = no\n",
        "tern.conf");
    INFO(all_diags(c));
    CHECK(c.diagnostics().empty());
    CHECK(c.effective(true) ==
          std::vector<std::pair<std::string, std::string>>{{"debug", "no"},
                                                           {"mydestination", "a.example, b.example, c.example"}});
    CHECK(c.get_list("mydestination") == std::vector<std::string>{"a.example", "b.example", "c.example"});

    Config orphan = Config::parse("  dangling = 1\n", "tern.conf");
    CHECK(has_diag(orphan, 1, "continuation line without"));
}

TEST_CASE("expansion: $key, ${key}, nested, conditionals, $$", "[config]") {
    Config c = Config::parse(
        "myhostname = mx.example.com\n"
        "smtpd_banner = ${myhostname}-x $mydomain $$literal ${mydomain?yes} ${debug:never} ${virtual_mailbox_domains:none}\n"
        "queue_directory = $data_directory/queue\n"
        "data_directory = /srv/$mydomain\n",
        "tern.conf");
    INFO(all_diags(c));
    CHECK(c.diagnostics().empty());
    CHECK(c.get("smtpd_banner") == "mx.example.com-x example.com $literal yes  none");
    CHECK(c.get("queue_directory") == "/srv/example.com/queue");
    // Raw values show as written in nothing but the effective list: expanded.
    auto eff = c.effective(true);
    REQUIRE(eff.size() == 4);
    CHECK(eff[0] == std::pair<std::string, std::string>{"data_directory", "/srv/example.com"});
    // A lone $ or an unterminated ${ stays literal.
    CHECK(c.expand_value("cost: 5$ ${unterminated") == "cost: 5$ ${unterminated");
    CHECK(c.expand_value("$myhostname.") == "mx.example.com.");
}

TEST_CASE("expansion follows config_directory", "[config]") {
    Config c = Config::parse("queue_directory = $config_directory/../spool\n", "tern.conf");
    c.set("config_directory", "/home/u/tern/run/etc");
    CHECK(c.get("config_directory") == "/home/u/tern/run/etc");
    CHECK(c.get("queue_directory") == "/home/u/tern/run/spool");  // paths read lexically normalized
    CHECK(c.get("alias_maps") == "/home/u/tern/run/etc/aliases");
}

TEST_CASE("expansion loops are reported and stay bounded", "[config]") {
    Config c = Config::parse(
        "myorigin = $mydomain\n"
        "mydomain = ${myorigin}\n"
        "smtpd_banner = $smtpd_banner!\n",
        "tern.conf");
    CHECK(has_diag(c, 1, "expansion loop"));
    CHECK(has_diag(c, 2, "expansion loop"));
    CHECK(has_diag(c, 3, "expansion loop in value of smtpd_banner: $smtpd_banner -> $smtpd_banner"));
    CHECK(c.get("smtpd_banner").size() < 100);  // bounded, no hang

    // mydomain's computed default refers to myhostname: a loop through it too.
    Config via_default = Config::parse("myhostname = mx.$mydomain\n", "tern.conf");
    CHECK(has_diag(via_default, 1, "expansion loop in value of myhostname: $myhostname -> $mydomain -> $myhostname"));
    CHECK(via_default.get("myhostname").size() < 1000);
    CHECK(via_default.apply_override("myhostname=mx.example.com") );

    // Exponential fan-out without a loop: the expansion budget stops it.
    std::string text = "myhostname = x\n";
    const char* chain[] = {"myorigin", "mydomain", "smtpd_banner", "recipient_delimiter", "home_mailbox",
                           "default_user", "vmail_user", "setgid_group", "smtpd_mode"};
    for (size_t i = 0; i + 1 < std::size(chain); ++i) {
        std::string next = std::string("$") + chain[i + 1];
        text += std::string(chain[i]) + " = " + next + next + next + next + next + next + next + next + "\n";
    }
    Config big = Config::parse(text, "tern.conf");
    CHECK(has_diag(big, 2, "expands too deeply"));
    CHECK(big.get("myorigin").size() <= (1u << 21));
}

TEST_CASE("unknown $name expands to nothing and is diagnosed", "[config]") {
    Config c = Config::parse("\nsmtpd_banner = hi $nosuch ${alsonot} there\n", "tern.conf");
    CHECK(has_diag(c, 2, "unknown parameter $nosuch in value of smtpd_banner"));
    CHECK(has_diag(c, 2, "unknown parameter $alsonot"));
    CHECK(c.get("smtpd_banner") == "hi   there");
}

TEST_CASE("errors name file:line", "[config]") {
    Config c = Config::parse(
        "debug = yes\n"
        "no_such_key = 1\n"
        "just some words\n"
        "= value\n"
        "bad key = 1\n"
        "config_directory = /etc\n",
        "/etc/tern/tern.conf");
    REQUIRE(c.diagnostics().size() == 5);
    CHECK(c.diagnostics()[0].to_string() == "/etc/tern/tern.conf:2: unknown key 'no_such_key'");
    CHECK(has_diag(c, 3, "missing '='"));
    CHECK(has_diag(c, 4, "missing key name"));
    CHECK(has_diag(c, 5, "bad key name"));
    CHECK(has_diag(c, 6, "config_directory cannot be set"));
    // A continuation of an unknown key is not a second error.
    Config d = Config::parse("nope = 1\n  more\n", "tern.conf");
    CHECK(d.diagnostics().size() == 1);
    Diagnostic nl{"tern.conf", 0, "x"};
    CHECK(nl.to_string() == "tern.conf: x");
}

TEST_CASE("each kind is validated", "[config]") {
    struct Case {
        const char* line;
        const char* part;
    };
    Case bad[] = {
        {"smtpd_recipient_limit = ten", "bad integer value for smtpd_recipient_limit"},
        {"smtpd_recipient_limit = 99999999999999999999", "out of range"},
        {"smtpd_recipient_limit = 5x", "expected an integer"},
        {"debug = maybe", "expected yes or no"},
        {"smtpd_timeout = 5y", "bad duration unit"},
        {"smtpd_timeout = -5s", "expected a duration"},
        {"smtpd_timeout = 99999999999d", "duration too large"},
        {"smtpd_timeout = 10ss", "bad duration unit"},
        {"message_size_limit = 10T", "bad size unit"},
        {"message_size_limit = 99999999999999999999", "too large"},
        {"message_size_limit = 99999999999G", "too large"},
        {"queue_directory = var/spool", "must be an absolute path"},
        {"queue_directory = $mydomain/spool", "must be an absolute path"},
        {"smtpd_mode = lmtp", "must be one of smtp, submission, smtps"},
        {"smtpd_tls_security_level = always", "must be one of none, may, encrypt"},
        {"log_target = tern.log", "syslog, stderr or an absolute file path"},
    };
    for (const auto& b : bad) {
        Config c = Config::parse(std::string(b.line) + "\n", "tern.conf");
        INFO(b.line << " -> " << all_diags(c));
        CHECK(has_diag(c, 1, b.part));
    }
    const char* good[] = {
        "smtpd_recipient_limit = -1", "debug = on", "debug = TRUE", "debug = 0",
        "smtpd_timeout = 30", "smtpd_timeout = 2h", "smtpd_timeout = 1w",
        "message_size_limit = 50M", "message_size_limit = 0",
        "queue_directory = /x", "smtpd_tls_cert_file =", "log_target = /var/log/tern.log",
        "log_target = stderr", "smtpd_mode = smtps",
    };
    for (const char* g : good) {
        Config c = Config::parse(std::string(g) + "\n", "tern.conf");
        INFO(g << " -> " << all_diags(c));
        CHECK(c.diagnostics().empty());
    }
}

TEST_CASE("duration and size parsers", "[config]") {
    CHECK(*parse_duration("300s") == 300s);
    CHECK(*parse_duration("300") == 300s);
    CHECK(*parse_duration("5m") == 300s);
    CHECK(*parse_duration("4h") == 4h);
    CHECK(*parse_duration("5d") == std::chrono::seconds(432000));
    CHECK(*parse_duration(" 0 ") == 0s);
    CHECK_FALSE(parse_duration(""));
    CHECK_FALSE(parse_duration("s"));
    CHECK_FALSE(parse_duration("1.5h"));
    CHECK_FALSE(parse_duration("1h30m"));
    CHECK(*parse_size("10240000") == 10240000u);
    CHECK(*parse_size("10k") == 10240u);
    CHECK(*parse_size("50M") == 50u * 1024 * 1024);
    CHECK(*parse_size("1G") == 1024u * 1024 * 1024);
    CHECK_FALSE(parse_size("1.5M"));
    CHECK_FALSE(parse_size("-1"));
    CHECK_FALSE(parse_size("M"));
    CHECK(*parse_bool("Yes"));
    CHECK_FALSE(*parse_bool("off"));
    CHECK_FALSE(parse_bool(""));
    CHECK(check_value(Kind::Path, "/a"));
    CHECK_FALSE(check_value(Kind::Path, "a"));
    CHECK_FALSE(check_value(Kind::String, std::string_view("a\0b", 3)));
}

TEST_CASE("overrides", "[config]") {
    Config c = Config::parse("myhostname = mx.example.com\n", "tern.conf");
    REQUIRE(c.apply_override("smtpd_mode=submission"));
    CHECK(c.get("smtpd_mode") == "submission");
    CHECK(c.is_set("smtpd_mode"));
    REQUIRE(c.apply_override("mydomain = other.example"));
    CHECK(c.get("mydomain") == "other.example");

    auto unknown = c.apply_override("smtpd_moed=submission");
    REQUIRE_FALSE(unknown);
    CHECK(unknown.message().find("unknown key 'smtpd_moed'") != std::string::npos);
    CHECK_FALSE(c.apply_override("smtpd_mode"));
    CHECK_FALSE(c.apply_override("config_directory=/x"));

    // A bad value is refused and the old value stays.
    auto bad = c.apply_override("smtpd_timeout=soon");
    REQUIRE_FALSE(bad);
    CHECK(bad.message().find("smtpd_timeout") != std::string::npos);
    CHECK(c.get_duration("smtpd_timeout") == 300s);
    CHECK_FALSE(c.is_set("smtpd_timeout"));

    // An override that breaks another key through expansion is refused too.
    REQUIRE(c.apply_override("data_directory=/srv"));
    REQUIRE(c.apply_override("queue_directory=$data_directory/q"));
    CHECK(c.get("queue_directory") == "/srv/q");
    CHECK_FALSE(c.apply_override("data_directory=relative"));
    CHECK(c.get("data_directory") == "/srv");
    CHECK_FALSE(c.apply_override("myorigin=$myorigin"));
}

TEST_CASE("effective values", "[config]") {
    Config c = Config::parse("debug = yes\nmyhostname = h.example\n", "tern.conf");
    auto only = c.effective(true);
    CHECK(only == std::vector<std::pair<std::string, std::string>>{{"debug", "yes"}, {"myhostname", "h.example"}});
    auto all = c.effective(false);
    CHECK(all.size() == all_keys().size());
    CHECK(std::is_sorted(all.begin(), all.end()));
    auto it = std::find_if(all.begin(), all.end(), [](const auto& p) { return p.first == "myorigin"; });
    REQUIRE(it != all.end());
    CHECK(it->second == "h.example");
}

TEST_CASE("getters reject keys outside the table", "[config]") {
    Config c = Config::parse("", "tern.conf");
    CHECK_THROWS_AS(c.get("nope"), std::logic_error);
    CHECK_THROWS_AS(c.get_int("nope"), std::logic_error);
    CHECK_THROWS_AS(c.set("nope", "1"), std::logic_error);
    c.set("smtpd_timeout", "bogus");  // set() is unchecked; reading it is a programmer error
    CHECK_THROWS_AS(c.get_duration("smtpd_timeout"), std::logic_error);
}

TEST_CASE("load from a directory", "[config]") {
    TempDir dir;
    SECTION("missing tern.conf means defaults") {
        auto c = Config::load(dir.path.string());
        REQUIRE(c);
        CHECK(c->dir() == dir.path.string());
        CHECK(c->get("config_directory") == dir.path.string());
        CHECK(c->get("virtual_mailbox_maps") == dir.path.string() + "/users");
    }
    SECTION("values and errors") {
        dir.write("tern.conf", "queue_directory = $config_directory/../spool\n");
        auto c = Config::load(dir.path.string() + "/");
        REQUIRE(c);
        CHECK(c->get("queue_directory") == (dir.path / "../spool").lexically_normal().string());
        dir.write("tern.conf", "debug = yes\nbogus = 1\nsmtpd_timeout = x\n");
        auto bad = Config::load(dir.path.string());
        REQUIRE_FALSE(bad);
        std::string file = dir.path.string() + "/tern.conf";
        CHECK(bad.message().find(file + ":2: unknown key 'bogus'") != std::string::npos);
        CHECK(bad.message().find(file + ":3: bad duration value for smtpd_timeout") != std::string::npos);
    }
    SECTION("a relative directory is made absolute") {
        auto old = std::filesystem::current_path();
        std::filesystem::current_path(dir.path);
        auto c = Config::load(".");
        std::filesystem::current_path(old);
        REQUIRE(c);
        CHECK(c->dir() == dir.path.string());
    }
}

TEST_CASE("config_dir_from", "[config]") {
    const char* saved = std::getenv("TERN_CONFIG_DIR");
    std::string saved_value = saved ? saved : "";
    unsetenv("TERN_CONFIG_DIR");
    CHECK(config_dir_from("") == "/etc/tern");
    CHECK(config_dir_from("/opt/tern/etc/") == "/opt/tern/etc");
    setenv("TERN_CONFIG_DIR", "/srv/tern", 1);
    CHECK(config_dir_from("") == "/srv/tern");
    CHECK(config_dir_from("/x") == "/x");
    CHECK(config_dir_from("rel/dir") == (std::filesystem::current_path() / "rel/dir").string());
    {
        TempDir dir;
        dir.write("tern.conf", "debug = yes\n");
        setenv("TERN_CONFIG_DIR", dir.path.c_str(), 1);
        auto c = Config::load("");
        REQUIRE(c);
        CHECK(c->dir() == dir.path.string());
        CHECK(c->get_bool("debug"));
    }
    if (saved) setenv("TERN_CONFIG_DIR", saved_value.c_str(), 1);
    else unsetenv("TERN_CONFIG_DIR");
}

TEST_CASE("hostile input never crashes", "[config]") {
    std::string junk;
    for (int i = 0; i < 256; ++i) junk += static_cast<char>(i);
    const std::string inputs[] = {
        junk,
        std::string("debug = y\0es\n", 13),
        "= = = =\n",
        "$\n${\n${}\n${a?\n${debug?${debug?${debug?}}}\n",
        std::string(100000, ' ') + "x",
        "smtpd_banner = " + std::string(5000, '$'),
        "smtpd_banner = " + std::string(5000, '{'),
        "\n\n\n\t\t\n",
    };
    for (const auto& in : inputs) {
        Config c = Config::parse(in, "tern.conf");
        for (const auto& [k, v] : c.effective(false)) (void)v;
        SUCCEED();
    }
}
