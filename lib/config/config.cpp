// tern.conf reading, $key expansion, value checking and typed getters.
//
// The file is kept as written (values unexpanded) and expanded when a value
// is read, like Postfix's main.cf, so `queue_directory = $config_directory/..`
// follows config_directory and `-o` overrides of one key reach every key that
// references it.  Checking happens once after parsing (and again after each
// override): unknown keys, expansion loops, unknown $names and values that do
// not fit their key's kind all become Diagnostics naming file:line.
#include "lib/config/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include "lib/config/text.hpp"
#include "lib/core/errno_text.hpp"

namespace tern::config {

using text::is_name_char;
using text::is_space;
using text::quote;
using text::trim;

namespace {

// Bounds expansion work so that a hostile file (a = $b$b, b = $c$c, ...)
// cannot make a read take exponential time or memory.
constexpr int kMaxExpansionDepth = 32;
constexpr int kExpansionBudget = 1000;
constexpr size_t kMaxExpandedSize = 256 * 1024;

// One piece of a value: literal text, or a reference to a key, optionally
// conditional (${name?text} / ${name:text}).
struct Segment {
    enum Type { Literal, Ref, IfSet, IfUnset } type = Literal;
    std::string_view text;  // literal text, or the conditional's text
    std::string_view name;
};

std::vector<Segment> split_segments(std::string_view v) {
    std::vector<Segment> out;
    size_t lit_start = 0;
    auto flush = [&](size_t end) {
        if (end > lit_start) out.push_back({Segment::Literal, v.substr(lit_start, end - lit_start), {}});
    };
    size_t i = 0;
    while (i < v.size()) {
        if (v[i] != '$' || i + 1 >= v.size()) { ++i; continue; }
        char next = v[i + 1];
        if (next == '$') {  // $$ is a literal dollar
            flush(i + 1);
            i += 2;
            lit_start = i;
            continue;
        }
        if (is_name_char(next)) {
            size_t j = i + 1;
            while (j < v.size() && is_name_char(v[j])) ++j;
            flush(i);
            out.push_back({Segment::Ref, {}, v.substr(i + 1, j - i - 1)});
            i = j;
            lit_start = i;
            continue;
        }
        if (next == '{') {
            size_t j = i + 2;
            while (j < v.size() && is_name_char(v[j])) ++j;
            std::string_view name = v.substr(i + 2, j - i - 2);
            if (name.empty() || j >= v.size()) { ++i; continue; }
            if (v[j] == '}') {
                flush(i);
                out.push_back({Segment::Ref, {}, name});
                i = j + 1;
                lit_start = i;
                continue;
            }
            if (v[j] == '?' || v[j] == ':') {
                // Find the matching brace; the text may itself hold ${...}.
                int level = 1;
                size_t k = j + 1;
                for (; k < v.size(); ++k) {
                    if (v[k] == '{') ++level;
                    else if (v[k] == '}' && --level == 0) break;
                }
                if (k >= v.size()) { ++i; continue; }
                flush(i);
                out.push_back({v[j] == '?' ? Segment::IfSet : Segment::IfUnset, v.substr(j + 1, k - j - 1), name});
                i = k + 1;
                lit_start = i;
                continue;
            }
        }
        ++i;  // a lone '$' stays literal
    }
    flush(v.size());
    return out;
}

const std::string& system_hostname() {
    static const std::string name = [] {
        char buf[256] = {};
        if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return std::string("localhost");
        return std::string(buf);
    }();
    return name;
}

// Keys whose values come from a short fixed set (beyond their kind).
struct Choice {
    std::string_view key;
    std::vector<std::string_view> values;
};
const std::vector<Choice>& choices() {
    static const std::vector<Choice> c = {
        {"smtpd_mode", {"smtp", "submission", "smtps"}},
        {"smtpd_tls_security_level", {"none", "may", "encrypt"}},
    };
    return c;
}

Status check_key_value(const KeyInfo& key, std::string_view value) {
    if (auto st = check_value(key.kind, value); !st) return st;
    for (const auto& c : choices()) {
        if (c.key != key.name) continue;
        if (std::find(c.values.begin(), c.values.end(), value) != c.values.end()) return {};
        std::string list;
        for (auto v : c.values) list += (list.empty() ? "" : ", ") + std::string(v);
        return make_error("must be one of " + list);
    }
    if (key.name == "log_target" && value != "syslog" && value != "stderr" &&
        (value.empty() || value.front() != '/'))
        return make_error("must be syslog, stderr or an absolute file path");
    return {};
}

const char* kind_name(Kind k) {
    switch (k) {
    case Kind::String: return "string";
    case Kind::Int: return "integer";
    case Kind::Bool: return "yes/no";
    case Kind::Duration: return "duration";
    case Kind::Size: return "size";
    case Kind::List: return "list";
    case Kind::Path: return "path";
    }
    return "value";
}

}  // namespace

std::string Diagnostic::to_string() const {
    if (line > 0) return file + ":" + std::to_string(line) + ": " + message;
    return file + ": " + message;
}

std::vector<std::string> referenced_keys(std::string_view value) {
    std::vector<std::string> out;
    for (const auto& seg : split_segments(value)) {
        if (seg.type == Segment::Literal) continue;
        out.emplace_back(seg.name);
        if (seg.type != Segment::Ref)
            for (auto& inner : referenced_keys(seg.text)) out.push_back(std::move(inner));
    }
    return out;
}

std::string config_dir_from(const std::string& flag_value) {
    std::string dir = flag_value;
    if (dir.empty()) {
        const char* env = std::getenv("TERN_CONFIG_DIR");
        dir = (env && *env) ? env : "/etc/tern";
    }
    std::error_code ec;
    std::filesystem::path p = std::filesystem::absolute(dir, ec);
    if (ec) return dir;
    std::string s = p.lexically_normal().string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s;
}

// ---- Config ----

namespace {
// File order reads best; problems without a line (bad defaults) come last.
void sort_by_line(std::vector<Diagnostic>& diags) {
    std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
        return std::pair(a.line == 0, a.line) < std::pair(b.line == 0, b.line);
    });
}
}  // namespace

Result<Config> Config::load(const std::string& dir) {
    Config c;
    c.dir_ = config_dir_from(dir);  // "" means $TERN_CONFIG_DIR or /etc/tern
    c.filename_ = c.dir_ + "/tern.conf";
    std::ifstream in(c.filename_, std::ios::binary);
    if (in) {
        std::ostringstream text;
        text << in.rdbuf();
        if (in.bad()) return errno_error("read " + c.filename_);
        c.parse_text(text.str());
    } else if (errno != ENOENT) {
        // A missing tern.conf means all defaults; any other failure is an error.
        return errno_error("open " + c.filename_);
    }
    c.check(c.diagnostics_);
    sort_by_line(c.diagnostics_);
    if (!c.diagnostics_.empty()) {
        std::string all;
        for (const auto& d : c.diagnostics_) all += (all.empty() ? "" : "\n") + d.to_string();
        return make_error(all);
    }
    return c;
}

Config Config::parse(std::string_view text, const std::string& filename) {
    Config c;
    c.filename_ = filename;
    c.parse_text(text);
    c.check(c.diagnostics_);
    sort_by_line(c.diagnostics_);
    return c;
}

void Config::parse_text(std::string_view text) {
    std::string current;  // the key the next continuation line belongs to ("" = none)
    bool current_known = false;
    bool have_logical_line = false;
    int lineno = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
        ++lineno;
        std::string_view body = trim(line);
        if (body.empty() || body.front() == '#') continue;  // blank and comment lines never end a value
        auto diag = [&](std::string msg) { diagnostics_.push_back({filename_, lineno, std::move(msg)}); };

        if (is_space(line.front())) {
            if (!have_logical_line) {
                diag("continuation line without a preceding 'key = value' line");
                continue;
            }
            if (current_known) {
                auto& v = values_[current];
                if (!v.empty()) v += ' ';
                v += body;
            }
            continue;
        }
        have_logical_line = true;
        current_known = false;
        size_t eq = body.find('=');
        if (eq == std::string_view::npos) {
            current.clear();
            diag("missing '=' in " + quote(body) + " (expected 'key = value')");
            continue;
        }
        std::string_view key = trim(body.substr(0, eq));
        std::string_view value = trim(body.substr(eq + 1));
        current = std::string(key);
        if (key.empty()) {
            diag("missing key name before '='");
            continue;
        }
        if (!std::all_of(key.begin(), key.end(), is_name_char)) {
            diag("bad key name " + quote(key));
            continue;
        }
        if (!find_key(key)) {
            diag("unknown key " + quote(key));
            continue;
        }
        if (key == "config_directory") {
            diag("config_directory cannot be set: it is the directory tern.conf is in");
            continue;
        }
        // A repeated key: the last one wins, as in Postfix's main.cf.
        values_[current] = std::string(value);
        lines_[current] = lineno;
        current_known = true;
    }
}

std::string Config::raw(std::string_view key) const {
    if (auto it = values_.find(key); it != values_.end()) return it->second;
    if (key == "config_directory") return dir_;
    if (key == "myhostname") return system_hostname();
    // mydomain's default is computed from myhostname in expand_key().
    if (const KeyInfo* k = find_key(key)) return std::string(k->default_value);
    return "";
}

std::string Config::expand_key(std::string_view key, int depth, int& budget) const {
    if (key == "mydomain" && !is_set(key)) {
        // myhostname minus its first label, or "localdomain".
        std::string host = expand_key("myhostname", depth + 1, budget);
        size_t dot = host.find('.');
        if (dot == std::string::npos || dot + 1 >= host.size()) return "localdomain";
        return host.substr(dot + 1);
    }
    return expand(raw(key), depth, budget);
}

std::vector<std::string> Config::references_of(std::string_view key) const {
    if (key == "mydomain" && !is_set(key)) return {"myhostname"};
    return referenced_keys(raw(key));
}

std::string Config::expand(std::string_view value, int depth, int& budget) const {
    if (value.find('$') == std::string_view::npos) return std::string(value);
    std::string out;
    for (const auto& seg : split_segments(value)) {
        if (out.size() > kMaxExpandedSize) {
            budget = -1;  // reported by check() like a runaway expansion
            break;
        }
        if (seg.type == Segment::Literal) {
            out += seg.text;
            continue;
        }
        // Loops and runaway expansions end here, expanding to nothing; check()
        // reports them when the file is loaded.
        if (depth >= kMaxExpansionDepth || --budget < 0) continue;
        std::string inner = expand_key(seg.name, depth + 1, budget);
        if (seg.type == Segment::Ref) out += inner;
        else if ((seg.type == Segment::IfSet) == !inner.empty()) out += expand(seg.text, depth + 1, budget);
    }
    return out;
}

std::string Config::expand_value(std::string_view text) const {
    int budget = kExpansionBudget;
    return expand(text, 0, budget);
}

void Config::check(std::vector<Diagnostic>& out) const {
    auto line_of = [&](const std::string& key) {
        auto it = lines_.find(key);
        return it == lines_.end() ? 0 : it->second;
    };
    for (const KeyInfo& info : all_keys()) {
        std::string key(info.name);
        std::string value = raw(key);
        bool set = is_set(key);
        int line = line_of(key);
        std::string where = set ? key : key + " (default " + quote(value) + ")";

        for (const auto& ref : referenced_keys(value))
            if (!find_key(ref)) out.push_back({filename_, line, "unknown parameter $" + ref + " in value of " + where});

        // Walk the references depth-first looking for a path back to key.
        std::vector<std::string> path{key};
        std::set<std::string> seen;
        std::function<bool(const std::string&)> loops = [&](const std::string& k) -> bool {
            if (path.size() > kMaxExpansionDepth) return false;
            for (const auto& ref : references_of(k)) {
                if (!find_key(ref)) continue;
                if (ref == key) { path.push_back(ref); return true; }
                if (!seen.insert(ref).second) continue;
                path.push_back(ref);
                if (loops(ref)) return true;
                path.pop_back();
            }
            return false;
        };
        if (loops(key)) {
            std::string chain;
            for (const auto& p : path) chain += (chain.empty() ? "$" : " -> $") + p;
            out.push_back({filename_, line, "expansion loop in value of " + where + ": " + chain});
            continue;
        }
        int budget = kExpansionBudget;
        std::string expanded = expand_key(key, 0, budget);
        if (budget < 0) {
            out.push_back({filename_, line, "value of " + where + " expands too deeply or too large"});
            continue;
        }
        if (auto st = check_key_value(info, expanded); !st) {
            std::string shown = expanded == value ? quote(value) : quote(value) + " = " + quote(expanded);
            out.push_back({filename_, line, "bad " + std::string(kind_name(info.kind)) + " value for " + key + " " +
                                                shown + ": " + st.message()});
        }
    }
}

namespace {
[[noreturn]] void unknown_key(std::string_view key) {
    throw std::logic_error("tern.conf key '" + std::string(key) + "' is not in the key table");
}
[[noreturn]] void bad_stored_value(std::string_view key, const std::string& why) {
    throw std::logic_error("tern.conf key '" + std::string(key) + "' has an unchecked bad value: " + why);
}
}  // namespace

std::string Config::get(std::string_view key) const {
    const KeyInfo* info = find_key(key);
    if (!info) unknown_key(key);
    int budget = kExpansionBudget;
    std::string value = expand_key(key, 0, budget);
    // "$config_directory/../spool" reads as /x/run/spool in logs and status.
    if (info->kind == Kind::Path && !value.empty())
        value = std::filesystem::path(value).lexically_normal().string();
    return value;
}

long long Config::get_int(std::string_view key) const {
    auto r = parse_int(get(key));
    if (!r) bad_stored_value(key, r.message());
    return *r;
}

bool Config::get_bool(std::string_view key) const {
    auto r = parse_bool(get(key));
    if (!r) bad_stored_value(key, r.message());
    return *r;
}

std::chrono::seconds Config::get_duration(std::string_view key) const {
    auto r = parse_duration(get(key));
    if (!r) bad_stored_value(key, r.message());
    return *r;
}

uint64_t Config::get_size(std::string_view key) const {
    auto r = parse_size(get(key));
    if (!r) bad_stored_value(key, r.message());
    return *r;
}

std::vector<std::string> Config::get_list(std::string_view key) const { return split_list(get(key)); }

bool Config::is_set(std::string_view key) const { return values_.find(key) != values_.end(); }

Status Config::apply_override(std::string_view key_equals_value) {
    size_t eq = key_equals_value.find('=');
    if (eq == std::string_view::npos) return make_error("override " + quote(key_equals_value) + ": missing '='");
    std::string key(trim(key_equals_value.substr(0, eq)));
    std::string_view value = trim(key_equals_value.substr(eq + 1));
    if (!find_key(key)) return make_error("override: unknown key " + quote(key));
    if (key == "config_directory") return make_error("override: config_directory cannot be set");

    // Apply, recheck everything (other keys may reference this one), and
    // undo on failure so the Config stays valid.
    auto old_values = values_;
    auto old_lines = lines_;
    values_[key] = std::string(value);
    lines_.erase(key);
    std::vector<Diagnostic> problems;
    check(problems);
    if (problems.empty()) return {};
    values_ = std::move(old_values);
    lines_ = std::move(old_lines);
    return make_error("override " + quote(key_equals_value) + ": " + problems.front().message);
}

void Config::set(std::string_view key, std::string_view value) {
    if (!find_key(key)) unknown_key(key);
    if (key == "config_directory") {
        dir_ = std::string(value);
        return;
    }
    values_[std::string(key)] = std::string(value);
}

std::vector<std::pair<std::string, std::string>> Config::effective(bool only_non_default) const {
    std::vector<std::pair<std::string, std::string>> out;
    for (const KeyInfo& info : all_keys()) {
        if (only_non_default && !is_set(info.name)) continue;
        out.emplace_back(std::string(info.name), get(info.name));
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace tern::config
