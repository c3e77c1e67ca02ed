// tern.conf: the main configuration file.
//
// Format (like Postfix's main.cf): `key = value` lines, `#` comments, a line
// that starts with white space continues the previous value, and `$key` or
// `${key}` expands to another key's value when the value is read.  Every key
// tern knows is declared once in the key table (config_keys.cpp) with its
// default and a doc line; unknown keys and values of the wrong kind are errors
// that name file:line.  `-o key=value` overrides from services.conf are
// applied on top with apply_override().
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::config {

enum class Kind { String, Int, Bool, Duration, Size, List, Path };

struct KeyInfo {
    std::string_view name;
    Kind kind;
    std::string_view default_value;  // may reference other keys: "$queue_directory/maildrop"
    std::string_view doc;            // one line for `mailctl config` and docs/configuration.md
};

// The table of every key, sorted by name.
const std::vector<KeyInfo>& all_keys();
const KeyInfo* find_key(std::string_view name);

struct Diagnostic {
    std::string file;
    int line = 0;
    std::string message;
    std::string to_string() const;  // "tern.conf:12: unknown key 'foo'"
};

class Config {
public:
    // Reads DIR/tern.conf (a missing file means all defaults) and checks it.
    // DIR is made absolute; "" means config_dir_from("").
    // Fails with every diagnostic, one per line, when there is any.
    static Result<Config> load(const std::string& dir);
    // Parses text; diagnostics are collected, never thrown.
    static Config parse(std::string_view text, const std::string& filename);

    const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }
    const std::string& dir() const { return dir_; }

    // Typed getters, expanded.  Asking for a key not in the table is a
    // programmer error (std::logic_error).  Values were validated at load.
    std::string get(std::string_view key) const;
    long long get_int(std::string_view key) const;
    bool get_bool(std::string_view key) const;
    std::chrono::seconds get_duration(std::string_view key) const;  // "300s", "5m", "4h", "5d", plain = seconds
    uint64_t get_size(std::string_view key) const;                   // "10240000", "10k", "50M", "1G"
    std::vector<std::string> get_list(std::string_view key) const;   // comma and/or white space separated

    bool is_set(std::string_view key) const;  // given in the file or by an override
    Status apply_override(std::string_view key_equals_value);  // "-o key=value"
    void set(std::string_view key, std::string_view value);   // for tests and generated configs

    // Effective values, sorted by key; only_non_default keeps the set ones.
    std::vector<std::pair<std::string, std::string>> effective(bool only_non_default) const;

    // Expands $key, ${key}, ${key?text} (text when key is non-empty),
    // ${key:text} (text when key is empty) and $$ (a literal $) in any text,
    // e.g. a services.conf field.  Unknown names expand to nothing.
    std::string expand_value(std::string_view text) const;

private:
    std::string raw(std::string_view key) const;
    std::string expand(std::string_view value, int depth, int& budget) const;
    // A key's expanded value; computed defaults (mydomain) count against the
    // same depth and budget, so no chain of references can recurse forever.
    std::string expand_key(std::string_view key, int depth, int& budget) const;
    std::vector<std::string> references_of(std::string_view key) const;
    void parse_text(std::string_view text);
    // Appends diagnostics for loops, unknown $names and bad values.
    void check(std::vector<Diagnostic>& out) const;

    std::string dir_;
    std::map<std::string, std::string, std::less<>> values_;  // as written, unexpanded
    std::map<std::string, int, std::less<>> lines_;
    std::string filename_;
    std::vector<Diagnostic> diagnostics_;
};

// Value parsers shared with services.conf and the key table's validation.
Result<std::chrono::seconds> parse_duration(std::string_view text);
Result<uint64_t> parse_size(std::string_view text);
Result<bool> parse_bool(std::string_view text);  // yes/no, true/false, on/off, 1/0
Result<long long> parse_int(std::string_view text);             // decimal, optionally negative
std::vector<std::string> split_list(std::string_view text);      // commas and/or white space

// The key names a value references with $name / ${name...}, in order.
std::vector<std::string> referenced_keys(std::string_view value);

// Checks text against a kind (after expansion); the error says why.
Status check_value(Kind kind, std::string_view value);

// Where the configuration lives: -c DIR, else $TERN_CONFIG_DIR, else /etc/tern.
std::string config_dir_from(const std::string& flag_value);

}  // namespace tern::config
