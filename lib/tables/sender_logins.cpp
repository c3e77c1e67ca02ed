// Sender ownership after SMTP AUTH: see sender_logins.hpp.
#include "lib/tables/sender_logins.hpp"

#include <sys/stat.h>

#include "lib/log/log.hpp"
#include "lib/sys/files.hpp"
#include "lib/tables/address.hpp"
#include "lib/tables/lines.hpp"
#include "lib/tables/recipient_check.hpp"

namespace tern::tables {
namespace {

long long mtime_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return -1;
    return static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == ','; }

// alice+tag@example.org → alice@example.org (no delimiter: unchanged).
std::string without_extension(const std::string& address, std::string_view delimiters) {
    auto at = address.rfind('@');
    if (at == std::string::npos) return strip_extension(address, delimiters);
    return strip_extension(address.substr(0, at), delimiters) + address.substr(at);
}

bool alias_points_to(const RecipientCheck& tables, const std::string& key, std::string_view login,
                     std::string_view local_domain_login) {
    auto targets = tables.lookup_alias(key);
    if (!targets || !*targets) return false;
    for (const auto& t : **targets) {
        if (t.kind != TargetKind::Address) continue;
        std::string target = lowercase(t.value);
        if (target == login || (!local_domain_login.empty() && target == local_domain_login)) return true;
    }
    return false;
}

}  // namespace

SenderLoginsParse parse_sender_logins(std::string_view text, std::string_view filename) {
    SenderLoginsParse out;
    for_each_line(text, [&](std::string_view line, int line_no) {
        if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        std::vector<std::string> words;
        size_t i = 0;
        while (i < line.size()) {
            while (i < line.size() && blank(line[i])) ++i;
            size_t start = i;
            while (i < line.size() && !blank(line[i])) ++i;
            if (i > start) words.push_back(lowercase(line.substr(start, i - start)));
        }
        if (words.empty()) return;
        auto where = std::string(filename) + ":" + std::to_string(line_no) + ": ";
        const std::string& sender = words[0];
        auto at = sender.find('@');
        if (at == std::string::npos || at + 1 == sender.size() || sender.find('@', at + 1) != std::string::npos) {
            out.diagnostics.push_back(where + "'" + sender + "' is neither an address nor @domain");
            return;
        }
        if (words.size() < 2) {
            out.diagnostics.push_back(where + "no login for '" + sender + "'");
            return;
        }
        auto& owners = out.owners[sender];
        owners.insert(owners.end(), words.begin() + 1, words.end());
    });
    return out;
}

Result<SenderLogins> SenderLogins::load(const std::string& path) {
    SenderLogins map;
    map.path_ = path;
    if (path.empty()) return map;
    auto st = map.reload_if_changed();
    if (!st) return st.error();
    return map;
}

Status SenderLogins::reload_if_changed() {
    if (path_.empty()) return {};
    long long m = mtime_of(path_);
    if (m == mtime_ && m != -1) return {};
    auto text = sys::read_file(path_);
    if (!text) return text.error();
    auto parsed = parse_sender_logins(*text, path_);
    for (const auto& d : parsed.diagnostics) log::warning("%s", d.c_str());
    owners_ = std::move(parsed.owners);
    mtime_ = m;
    return {};
}

std::vector<std::string> SenderLogins::listed_owners(std::string_view sender) const {
    std::vector<std::string> out;
    std::string s = lowercase(sender);
    if (auto it = owners_.find(s); it != owners_.end()) out = it->second;
    auto at = s.rfind('@');
    if (at != std::string::npos)
        if (auto it = owners_.find(s.substr(at)); it != owners_.end()) out.insert(out.end(), it->second.begin(), it->second.end());
    return out;
}

bool sender_owned_by(std::string_view sender_in, std::string_view login_in, const SenderLogins& map,
                     const RecipientCheck* tables, std::string_view delimiters) {
    if (sender_in.empty()) return true;  // <>: bounces and notifications
    std::string sender = lowercase(sender_in);
    std::string login = login_in.find('@') == std::string_view::npos ? std::string(login_in) : lowercase(login_in);
    if (login.empty()) return false;
    std::string bare = without_extension(sender, delimiters);
    for (const auto& owner : map.listed_owners(sender))
        if (owner == login) return true;
    if (bare != sender)
        for (const auto& owner : map.listed_owners(bare))
            if (owner == login) return true;
    if (bare == login) return true;
    auto at = bare.rfind('@');
    if (at == std::string::npos || tables == nullptr) return false;
    std::string local = bare.substr(0, at), domain = bare.substr(at + 1);
    auto kind = tables->classify_domain(domain);
    bool system_login = login.find('@') == std::string::npos;
    if (kind == RecipientCheck::Domain::Local) {
        if (system_login && local == login) return true;
        // aliases(5) keys of local domains are bare local parts.
        return alias_points_to(*tables, local, login, "");
    }
    if (kind == RecipientCheck::Domain::Virtual) return alias_points_to(*tables, bare, login, "");
    return false;
}

}  // namespace tern::tables
