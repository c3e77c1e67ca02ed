// DomainList: see domains.hpp.
#include "lib/tables/domains.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/errno_text.hpp"
#include "lib/core/fd.hpp"
#include "lib/tables/address.hpp"
#include "lib/tables/lines.hpp"

namespace tern::tables {
namespace {

std::string normalise(std::string_view d) {
    while (!d.empty() && (d.front() == ' ' || d.front() == '\t')) d.remove_prefix(1);
    while (!d.empty() && (d.back() == ' ' || d.back() == '\t' || d.back() == '\r' || d.back() == '.'))
        d.remove_suffix(1);
    return lowercase(d);
}

bool valid_domain(std::string_view d) {
    if (d.empty() || d.size() > 255) return false;
    for (unsigned char c : d)
        if (c <= 0x20 || c == 0x7f || c == '@' || c == ',' || c == '/') return false;
    return true;
}

long long mtime_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return -1;
    return static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

}  // namespace

std::vector<std::string> parse_domain_list(std::string_view text, std::string_view filename,
                                           std::vector<std::string>* diagnostics) {
    std::vector<std::string> out;
    for_each_line(text, [&](std::string_view line, int line_no) {
        auto hash = line.find('#');
        if (hash != std::string_view::npos) line = line.substr(0, hash);
        std::string d = normalise(line);
        if (d.empty()) return;
        // Postfix lookup tables allow "domain value"; the first column is the domain.
        auto space = d.find_first_of(" \t");
        if (space != std::string::npos) d.resize(space);
        if (!valid_domain(d)) {
            if (diagnostics)
                diagnostics->push_back(std::string(filename) + ":" + std::to_string(line_no) +
                                       ": bad domain '" + d + "'");
            return;
        }
        out.push_back(std::move(d));
    });
    return out;
}

Result<DomainList> DomainList::load(const std::vector<std::string>& items) {
    DomainList list;
    list.items_ = items;
    list.mtimes_.assign(items.size(), 0);
    auto st = list.read_all();
    if (!st) return st.error();
    return list;
}

Status DomainList::read_all() {
    std::set<std::string, std::less<>> domains;
    std::vector<long long> mtimes(items_.size(), 0);
    for (size_t i = 0; i < items_.size(); ++i) {
        const auto& item = items_[i];
        if (item.empty()) continue;
        if (item.front() != '/') {
            domains.insert(normalise(item));
            continue;
        }
        mtimes[i] = mtime_of(item);
        Fd fd(::open(item.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) return errno_error("open domain list " + item);
        std::string text;
        char buf[16384];
        ssize_t n;
        while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
        if (n < 0) return errno_error("read domain list " + item);
        for (auto& d : parse_domain_list(text, item)) domains.insert(std::move(d));
    }
    domains_ = std::move(domains);
    mtimes_ = std::move(mtimes);
    return {};
}

bool DomainList::contains(std::string_view domain) const {
    return domains_.count(normalise(domain)) != 0;
}

Status DomainList::reload_if_changed() {
    for (size_t i = 0; i < items_.size(); ++i) {
        if (items_[i].empty() || items_[i].front() != '/') continue;
        if (mtime_of(items_[i]) != mtimes_[i]) return read_all();
    }
    return {};
}

}  // namespace tern::tables
