// services.conf parsing: one worker service per logical line (see services.hpp).
//
// Every field is checked here, once, so master can trust a ServiceSpec: a
// listen address is a literal IP and port or an absolute UNIX path that fits
// in sun_path, a process count is a small positive number, names are plain
// words, and `-o key=value` arguments name real tern.conf keys with values of
// the right kind (so a typo fails `mailctl config check`, not a worker start).
#include "lib/config/services.hpp"

#include <arpa/inet.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "lib/config/text.hpp"
#include "lib/core/errno_text.hpp"

namespace tern::config {

using text::is_space;
using text::quote;

namespace {

constexpr int kMaxProcessCount = 1024;

std::vector<std::string_view> split_fields(std::string_view s) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && is_space(s[i])) ++i;
        size_t j = i;
        while (j < s.size() && !is_space(s[j])) ++j;
        if (j > i) out.push_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

// Service, user and command names: plain words, so they are safe in log
// lines, paths and exec.
bool is_plain_name(std::string_view s) {
    if (s.empty() || s.size() > 64 || s.front() == '-' || s.front() == '.') return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
    });
}

Result<int> parse_port(std::string_view text) {
    int port = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || port < 1 || port > 65535)
        return make_error("bad port " + quote(text) + " (expected 1-65535)");
    return port;
}

// "0.0.0.0:25", "127.0.0.1:2525", "[::1]:25", "[::]:25", ":25" / "*:25" (any).
Result<ListenAddress> parse_inet(std::string_view text) {
    ListenAddress a;
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return make_error("bad address " + quote(text) + " (IPv6 is written [addr]:port)");
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        in6_addr v6;
        if (std::string h(host); inet_pton(AF_INET6, h.c_str(), &v6) != 1)
            return make_error("bad IPv6 address " + quote(host) + " in " + quote(text));
    } else {
        size_t colon = text.rfind(':');
        if (colon == std::string_view::npos)
            return make_error("bad address " + quote(text) + " (expected host:port)");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host == "*") host = "";
        if (host.find(':') != std::string_view::npos)
            return make_error("bad address " + quote(text) + " (IPv6 is written [addr]:port)");
        in_addr v4;
        if (std::string h(host); !host.empty() && inet_pton(AF_INET, h.c_str(), &v4) != 1)
            return make_error("bad IPv4 address " + quote(host) + " in " + quote(text) +
                              " (use a literal address, not a name)");
    }
    auto p = parse_port(port);
    if (!p) return make_error(p.message() + " in " + quote(text));
    a.host = std::string(host);
    a.port = *p;
    return a;
}

Result<ListenAddress> parse_unix(std::string_view text) {
    if (text.empty() || text.front() != '/')
        return make_error("UNIX socket path must be absolute: " + quote(text));
    if (text.size() >= sizeof(sockaddr_un::sun_path))
        return make_error("UNIX socket path too long (" + std::to_string(text.size()) + " bytes, at most " +
                          std::to_string(sizeof(sockaddr_un::sun_path) - 1) + "): " + quote(text));
    ListenAddress a;
    a.path = std::filesystem::path(std::string(text)).lexically_normal().string();
    return a;
}

// What `-` means: half the cores, rounded up.  Every worker is event-driven
// and runs helper threads of its own (smtpd's commit and sync threads,
// local-delivery's sync pool), so one process already keeps more than one
// core busy; a process per core oversubscribes the cores with those
// threads and splits the group commit into smaller batches that queue for
// the one LMDB writer lock anyway (docs/performance.md, "Issue 9, fifth
// pass": on 2 cores, 1 smtpd + 1 local-delivery delivered 4,100 msg/s where
// 2 + 2 delivered 3,400-3,500).
int default_process_count() {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    return static_cast<int>(std::min<long>((n + 1) / 2, kMaxProcessCount));
}

// One logical line: the fields as written, and where it started.
struct LogicalLine {
    int line = 0;
    std::string text;
};

std::vector<LogicalLine> logical_lines(std::string_view text, const std::string& filename,
                                       std::vector<std::string>& errors) {
    std::vector<LogicalLine> out;
    int lineno = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++lineno;
        size_t first = 0;
        while (first < line.size() && is_space(line[first])) ++first;
        while (!line.empty() && is_space(line.back())) line.remove_suffix(1);
        if (first >= line.size() || line[first] == '#') continue;
        std::string_view body = line.substr(first);
        if (first > 0) {  // an indented line continues the previous service
            if (out.empty()) {
                errors.push_back(filename + ":" + std::to_string(lineno) +
                                 ": continuation line without a preceding service line");
                continue;
            }
            out.back().text += ' ';
            out.back().text += body;
            continue;
        }
        out.push_back({lineno, std::string(body)});
    }
    return out;
}

}  // namespace

std::string ListenAddress::to_string() const {
    if (!path.empty()) return path;
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return (host.empty() ? std::string("*") : host) + ":" + std::to_string(port);
}

Result<std::vector<ServiceSpec>> parse_services(std::string_view text, const std::string& filename,
                                                const Config& config) {
    std::vector<std::string> errors;
    std::vector<ServiceSpec> services;
    std::map<std::string, int> names;           // name -> line
    std::map<std::string, std::string> listens;  // address -> service name

    for (const auto& ll : logical_lines(text, filename, errors)) {
        std::string where = filename + ":" + std::to_string(ll.line) + ": ";
        auto fail = [&](const std::string& msg) { errors.push_back(where + msg); };
        auto fields = split_fields(ll.text);
        if (fields.size() < 6) {
            static const char* kNames[] = {"name", "type", "listen", "user", "procs", "command"};
            fail("missing field '" + std::string(kNames[fields.size()]) +
                 "' (expected: name type listen user procs command [args])");
            continue;
        }
        ServiceSpec s;
        s.line = ll.line;
        s.source_line = ll.text;
        s.name = std::string(fields[0]);
        bool ok = true;

        if (!is_plain_name(s.name)) {
            fail("bad service name " + quote(s.name));
            ok = false;
        } else if (auto [it, fresh] = names.emplace(s.name, ll.line); !fresh) {
            fail("duplicate service name '" + s.name + "' (first defined at line " + std::to_string(it->second) + ")");
            ok = false;
        }

        std::string_view type = fields[1];
        if (type == "inet") s.type = ListenType::Inet;
        else if (type == "unix") s.type = ListenType::Unix;
        else if (type == "none") s.type = ListenType::None;
        else {
            fail("bad service type " + quote(type) + " (expected inet, unix or none)");
            ok = false;
        }

        if (ok) {
            for (const auto& ref : referenced_keys(fields[2]))
                if (!find_key(ref)) { fail("unknown parameter $" + ref + " in listen field"); ok = false; }
            std::string listen = config.expand_value(fields[2]);
            if (s.type == ListenType::None) {
                if (listen != "-") { fail("type none takes '-' as listen address, got " + quote(listen)); ok = false; }
            } else if (listen == "-" || listen.empty()) {
                fail("type " + std::string(type) + " needs a listen address");
                ok = false;
            } else {
                size_t start = 0;
                while (start <= listen.size()) {
                    size_t comma = listen.find(',', start);
                    std::string_view item = std::string_view(listen).substr(
                        start, comma == std::string::npos ? std::string::npos : comma - start);
                    start = comma == std::string::npos ? listen.size() + 1 : comma + 1;
                    auto addr = s.type == ListenType::Inet ? parse_inet(item) : parse_unix(item);
                    if (!addr) { fail(addr.message()); ok = false; continue; }
                    std::string key = addr->to_string();
                    if (auto [it, fresh] = listens.emplace(key, s.name); !fresh) {
                        fail("listen address " + key + " is already used by service '" + it->second + "'");
                        ok = false;
                        continue;
                    }
                    s.listen.push_back(*addr);
                }
            }
        }

        std::string_view user = fields[3];
        if (user == "-") s.user = config.get("default_user");
        else if (is_plain_name(user)) s.user = std::string(user);
        else { fail("bad user name " + quote(user)); ok = false; }

        std::string_view procs = fields[4];
        if (procs == "-") {
            s.process_count = default_process_count();
        } else {
            int n = 0;
            auto [ptr, ec] = std::from_chars(procs.data(), procs.data() + procs.size(), n);
            if (ec != std::errc() || ptr != procs.data() + procs.size() || n < 1 || n > kMaxProcessCount) {
                fail("bad process count " + quote(procs) + " (expected 1-" + std::to_string(kMaxProcessCount) +
                     " or -)");
                ok = false;
            }
            s.process_count = n;
        }

        s.command = std::string(fields[5]);
        if (!is_plain_name(s.command)) {
            fail("bad command " + quote(s.command) + " (a program name in daemon_directory, not a path)");
            ok = false;
        }

        // Arguments: $key expansion; `-o key=value` must be a valid override.
        Config probe = config;
        for (size_t i = 6; i < fields.size(); ++i) {
            for (const auto& ref : referenced_keys(fields[i]))
                if (!find_key(ref)) { fail("unknown parameter $" + ref + " in arguments"); ok = false; }
            s.args.push_back(config.expand_value(fields[i]));
            if (fields[i] != "-o") continue;
            if (i + 1 >= fields.size()) { fail("-o needs key=value"); ok = false; continue; }
            std::string override_text = config.expand_value(fields[i + 1]);
            if (auto st = probe.apply_override(override_text); !st) { fail(st.message()); ok = false; }
        }
        if (ok) services.push_back(std::move(s));
    }

    if (!errors.empty()) {
        std::string all;
        for (const auto& e : errors) all += (all.empty() ? "" : "\n") + e;
        return make_error(all);
    }
    return services;
}

Result<std::vector<ServiceSpec>> load_services(const Config& config) {
    std::string path = config.dir() + "/services.conf";
    std::ifstream in(path, std::ios::binary);
    if (!in) return errno_error("open " + path);
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return errno_error("read " + path);
    return parse_services(text.str(), path, config);
}

}  // namespace tern::config
