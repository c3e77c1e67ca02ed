// DomainList: a set of domain names from a config list whose items are
// domain names or absolute paths of files listing one domain per line
// ('#' comments), e.g. `virtual_mailbox_domains = example.org, /etc/tern/domains`.
// Small enough to hold in memory; files are re-read when their mtime changes.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::tables {

// Domains in a domains file; bad lines go to diagnostics.
std::vector<std::string> parse_domain_list(std::string_view text, std::string_view filename,
                                           std::vector<std::string>* diagnostics = nullptr);

class DomainList {
public:
    static Result<DomainList> load(const std::vector<std::string>& items);
    bool contains(std::string_view domain) const;  // case-insensitive, trailing dot ignored
    bool empty() const { return domains_.empty(); }
    // Re-reads listed files whose mtime changed; on error keeps the old set.
    Status reload_if_changed();

private:
    Status read_all();
    std::vector<std::string> items_;
    std::vector<long long> mtimes_;  // one per item; 0 for plain names
    std::set<std::string, std::less<>> domains_;
};

}  // namespace tern::tables
