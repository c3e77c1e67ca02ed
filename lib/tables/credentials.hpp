// SMTP AUTH client credentials (smtp_sasl_password_maps): a small text file
// of "next-hop user:password" lines, e.g.
//
//     [smtp.example.net]:587   alice:s3cret
//
// The password is everything after the first ':' (it may hold spaces and
// colons).  The file is read as text on each use and never compiled into
// another file, so its 0600 mode is the only copy's mode.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tern::tables {

struct Credentials {
    std::string user, password;
};

// The credentials for nexthop (matched without case), if a line has them.
std::optional<Credentials> find_credentials(std::string_view text, std::string_view nexthop);

}  // namespace tern::tables
