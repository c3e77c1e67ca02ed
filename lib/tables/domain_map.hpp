// DomainMap: a text table keyed by destination, compiled into LMDB
// (CompiledTable), for remote delivery's transport_maps and
// smtp_tls_policy_maps.
//
// Source format, one entry per line, '#' comments:
//
//     example.org        smtp:[mail.example.org]:587
//     .example.org       smtp:[relay.example.org]      (every subdomain)
//     [smtp.example.net]:587   encrypt                 (a literal next hop)
//     *                  smtp:[smarthost.example]:25   (everything else)
//
// lookup("a.b.example.org") tries "a.b.example.org", ".b.example.org",
// ".example.org", ".org", then "*" -- the most specific entry wins (as
// Postfix's transport(5) with parent_domain_matches_subdomains off).
// Keys are matched without case.  A line without a value is an error
// naming file:line, so a typo never silently routes mail elsewhere.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "lib/core/result.hpp"
#include "lib/tables/compiled_table.hpp"

namespace tern::tables {

Result<TableEntries> parse_domain_map(std::string_view text, std::string_view filename);
// Writes path + ".lmdb" (master does it at start and reload, as root, for
// daemons that cannot write the configuration directory).
Status compile_domain_map(const std::string& path);

class DomainMap {
public:
    static Result<DomainMap> open(const std::string& path);  // "" = an empty map
    Result<std::optional<std::string>> lookup(std::string_view destination) const;
    Status refresh();

private:
    std::optional<CompiledTable> table_;
};

// A transport table value (Postfix transport(5) style).
struct TransportEntry {
    enum class Kind { Smtp, Local, Error } kind = Kind::Smtp;
    std::string nexthop;  // Smtp: "[host]:port", "[host]", "domain"; "" = the recipient's domain
    std::string dsn;      // Error: the enhanced code (default 5.0.0)
    std::string text;     // Error: the reason
};
Result<TransportEntry> parse_transport(std::string_view value);

}  // namespace tern::tables
