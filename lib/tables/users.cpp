// Virtual users table: see users.hpp.
#include "lib/tables/users.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <set>

#include "lib/config/config.hpp"
#include "lib/core/errno_text.hpp"
#include "lib/core/fd.hpp"
#include "lib/log/log.hpp"
#include "lib/sys/files.hpp"
#include "lib/tables/address.hpp"
#include "lib/tables/lines.hpp"

namespace tern::tables {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

std::vector<std::string_view> split_fields(std::string_view line, size_t max_fields) {
    std::vector<std::string_view> fields;
    size_t pos = 0;
    while (fields.size() + 1 < max_fields) {
        size_t colon = line.find(':', pos);
        if (colon == std::string_view::npos) break;
        fields.push_back(line.substr(pos, colon - pos));
        pos = colon + 1;
    }
    fields.push_back(line.substr(pos));  // the last field keeps its colons (extra)
    return fields;
}

template <typename T>
bool parse_id(std::string_view text, std::optional<T>& out) {
    text = trim(text);
    if (text.empty()) return true;
    unsigned long long v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size() || v > 0x7fffffffULL) return false;
    out = static_cast<T>(v);
    return true;
}

bool valid_address(std::string_view a) {
    auto at = a.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == a.size()) return false;
    for (unsigned char c : a)
        if (c <= 0x20 || c == 0x7f) return false;
    return true;
}

// quota=SIZE in the extra fields; returns false with why on a bad value.
bool parse_extra(std::string_view extra, VirtualUser& user, std::string& why) {
    size_t pos = 0;
    while (pos < extra.size()) {
        while (pos < extra.size() && (extra[pos] == ' ' || extra[pos] == '\t')) ++pos;
        size_t end = extra.find_first_of(" \t", pos);
        if (end == std::string_view::npos) end = extra.size();
        std::string_view item = extra.substr(pos, end - pos);
        pos = end;
        if (item.rfind("quota=", 0) == 0) {
            auto size = config::parse_size(item.substr(6));
            if (!size) {
                why = "bad quota '" + std::string(item.substr(6)) + "'";
                return false;
            }
            user.quota = *size;
        }
    }
    return true;
}

// Compiled value: "uid:gid:home:extra" (ids empty when not given).
std::string encode_user(const VirtualUser& u) {
    std::string v;
    if (u.uid) v += std::to_string(*u.uid);
    v += ':';
    if (u.gid) v += std::to_string(*u.gid);
    v += ':';
    v += u.home;
    v += ':';
    v += u.extra;
    return v;
}

Result<TableEntries> build_users(const std::string& path) {
    auto text = sys::read_file(path);
    if (!text) return text.error();
    UsersParse parsed = parse_users(*text, path);
    for (const auto& d : parsed.diagnostics) log::warning("%s", d.c_str());
    TableEntries entries;
    for (const auto& u : parsed.users) entries.emplace_back(u.address, encode_user(u));
    return entries;
}

}  // namespace

UsersParse parse_users(std::string_view text, std::string_view filename) {
    UsersParse out;
    std::set<std::string, std::less<>> seen;
    for_each_line(text, [&](std::string_view raw, int line_no) {
        std::string_view line = trim(raw);
        if (line.empty() || line.front() == '#') return;
        auto where = std::string(filename) + ":" + std::to_string(line_no) + ": ";
        auto fields = split_fields(line, 6);
        if (fields.size() < 2) {
            out.diagnostics.push_back(where + "expected user@domain:password");
            return;
        }
        VirtualUser u;
        u.line = line_no;
        u.address = lowercase(trim(fields[0]));
        if (!valid_address(u.address)) {
            out.diagnostics.push_back(where + "'" + u.address + "' is not user@domain");
            return;
        }
        u.password = std::string(trim(fields[1]));
        bool ok = true;
        if (fields.size() > 2 && !parse_id(fields[2], u.uid)) ok = false;
        if (fields.size() > 3 && !parse_id(fields[3], u.gid)) ok = false;
        if (!ok) {
            out.diagnostics.push_back(where + "uid and gid must be numbers");
            return;
        }
        if (fields.size() > 4) u.home = std::string(trim(fields[4]));
        if (!u.home.empty() && u.home.front() != '/') {
            out.diagnostics.push_back(where + "home must be an absolute path");
            return;
        }
        if (fields.size() > 5) u.extra = std::string(trim(fields[5]));
        std::string why;
        if (!parse_extra(u.extra, u, why)) {
            out.diagnostics.push_back(where + why);
            return;
        }
        if (!seen.insert(u.address).second) {
            out.diagnostics.push_back(where + "duplicate user '" + u.address + "' ignored");
            return;
        }
        out.users.push_back(std::move(u));
    });
    return out;
}

Status compile_users(const std::string& path) { return compile_table(path, build_users); }

Result<UsersTable> UsersTable::open(const std::string& path) {
    auto table = CompiledTable::open(path, build_users);
    if (!table) return table.error();
    return UsersTable(std::move(*table));
}

Result<std::optional<VirtualUser>> UsersTable::lookup(std::string_view address) const {
    std::string key = lowercase(address);
    auto value = table_.get(key);
    if (!value) return value.error();
    if (!*value) return std::optional<VirtualUser>{};
    auto fields = split_fields(**value, 4);
    VirtualUser u;
    u.address = key;
    if (fields.size() == 4) {
        (void)parse_id(fields[0], u.uid);
        (void)parse_id(fields[1], u.gid);
        u.home = std::string(fields[2]);
        u.extra = std::string(fields[3]);
        std::string why;
        (void)parse_extra(u.extra, u, why);  // validated when compiled
    }
    return std::optional<VirtualUser>(std::move(u));
}

}  // namespace tern::tables
