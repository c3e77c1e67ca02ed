// Value kinds of tern.conf: parsing and checking integers, yes/no,
// durations, sizes, lists and paths (see config.hpp).  Shared by the key
// table's validation, the typed getters and services.conf.
#include <charconv>
#include <limits>
#include <string>
#include <vector>

#include "lib/config/config.hpp"
#include "lib/config/text.hpp"

namespace tern::config {

using text::is_space;
using text::lower;
using text::quote;
using text::trim;

Result<bool> parse_bool(std::string_view text) {
    std::string t = lower(trim(text));
    if (t == "yes" || t == "true" || t == "on" || t == "1") return true;
    if (t == "no" || t == "false" || t == "off" || t == "0") return false;
    return make_error("expected yes or no, got " + quote(text));
}

namespace {

// Digits followed by an optional unit letter; the number must fit.
Result<std::pair<uint64_t, char>> number_and_unit(std::string_view text, const char* what) {
    std::string_view t = trim(text);
    size_t digits = 0;
    while (digits < t.size() && std::isdigit(static_cast<unsigned char>(t[digits]))) ++digits;
    if (digits == 0) return make_error("expected a " + std::string(what) + ", got " + quote(text));
    uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + digits, n);
    if (ec != std::errc() || ptr != t.data() + digits) return make_error(std::string(what) + " too large: " + quote(text));
    std::string_view rest = t.substr(digits);
    if (rest.size() > 1) return make_error("bad " + std::string(what) + " unit in " + quote(text));
    return std::pair<uint64_t, char>{n, rest.empty() ? '\0' : rest[0]};
}

Result<uint64_t> scaled(uint64_t n, uint64_t factor, std::string_view text, const char* what) {
    if (factor != 0 && n > std::numeric_limits<uint64_t>::max() / factor)
        return make_error(std::string(what) + " too large: " + quote(text));
    return n * factor;
}

}  // namespace

Result<std::chrono::seconds> parse_duration(std::string_view text) {
    auto nu = number_and_unit(text, "duration");
    if (!nu) return nu.error();
    uint64_t factor = 0;
    switch (nu->second) {
    case '\0': case 's': factor = 1; break;
    case 'm': factor = 60; break;
    case 'h': factor = 3600; break;
    case 'd': factor = 86400; break;
    case 'w': factor = 7 * 86400; break;
    default: return make_error("bad duration unit in " + quote(text) + " (use s, m, h, d or w)");
    }
    auto secs = scaled(nu->first, factor, text, "duration");
    if (!secs) return secs.error();
    // Keep durations small enough that adding them to a time_point never overflows.
    if (*secs > 100ull * 365 * 86400) return make_error("duration too large: " + quote(text));
    return std::chrono::seconds(static_cast<long long>(*secs));
}

Result<uint64_t> parse_size(std::string_view text) {
    auto nu = number_and_unit(text, "size");
    if (!nu) return nu.error();
    uint64_t factor = 0;
    switch (nu->second) {
    case '\0': factor = 1; break;
    case 'k': case 'K': factor = 1024; break;
    case 'm': case 'M': factor = 1024 * 1024; break;
    case 'g': case 'G': factor = 1024ull * 1024 * 1024; break;
    default: return make_error("bad size unit in " + quote(text) + " (use k, M or G)");
    }
    auto bytes = scaled(nu->first, factor, text, "size");
    if (!bytes) return bytes.error();
    if (*bytes > static_cast<uint64_t>(std::numeric_limits<long long>::max()))
        return make_error("size too large: " + quote(text));
    return *bytes;
}

Result<long long> parse_int(std::string_view text) {
    std::string_view t = trim(text);
    long long n = 0;
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    if (t.empty() || ec == std::errc::invalid_argument || ptr != t.data() + t.size())
        return make_error("expected an integer, got " + quote(text));
    if (ec == std::errc::result_out_of_range) return make_error("integer out of range: " + quote(text));
    return n;
}

std::vector<std::string> split_list(std::string_view v) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < v.size()) {
        while (i < v.size() && (is_space(v[i]) || v[i] == ',' || v[i] == '\n')) ++i;
        size_t j = i;
        while (j < v.size() && !(is_space(v[j]) || v[j] == ',' || v[j] == '\n')) ++j;
        if (j > i) out.emplace_back(v.substr(i, j - i));
        i = j;
    }
    return out;
}

Status check_value(Kind kind, std::string_view value) {
    if (value.find('\0') != std::string_view::npos) return make_error("value contains a NUL byte");
    switch (kind) {
    case Kind::String:
    case Kind::List:
        return {};
    case Kind::Int: {
        auto r = parse_int(value);
        if (!r) return r.error();
        return {};
    }
    case Kind::Bool: {
        auto r = parse_bool(value);
        if (!r) return r.error();
        return {};
    }
    case Kind::Duration: {
        auto r = parse_duration(value);
        if (!r) return r.error();
        return {};
    }
    case Kind::Size: {
        auto r = parse_size(value);
        if (!r) return r.error();
        return {};
    }
    case Kind::Path:
        // Empty means "none" (e.g. no TLS certificate).
        if (!value.empty() && value.front() != '/')
            return make_error("must be an absolute path, got " + quote(value));
        return {};
    }
    return {};
}

}  // namespace tern::config
