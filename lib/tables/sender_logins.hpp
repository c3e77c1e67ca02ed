// Who may use which envelope sender after SMTP AUTH (like Postfix's
// smtpd_sender_login_maps with reject_sender_login_mismatch).
//
// A login always owns:
//   - its own address (virtual users log in as user@domain), with or
//     without a recipient_delimiter extension (alice+list@example.org);
//   - for a system login "bob": bob@<any local domain (mydestination)>;
//   - every address that is an alias whose targets include the login (one
//     level: "sales@example.org: alice@example.org" lets alice send as sales@).
// The optional smtpd_sender_login_maps file adds owners, one line per
// sender:
//
//   # sender               logins (comma or space separated)
//   info@example.org       alice@example.org, bob@example.org
//   @example.net           carol@example.org        # the whole domain
//
// The null sender (bounces) is allowed to every login.  SenderLogins is
// the parsed file, re-read when its mtime changes.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::tables {

class RecipientCheck;

struct SenderLoginsParse {
    std::map<std::string, std::vector<std::string>, std::less<>> owners;  // lower-cased sender or @domain → logins
    std::vector<std::string> diagnostics;
};
SenderLoginsParse parse_sender_logins(std::string_view text, std::string_view filename);

class SenderLogins {
public:
    // path may be empty (no map).
    static Result<SenderLogins> load(const std::string& path);
    // Re-reads the file when it changed; on error keeps the old map.
    Status reload_if_changed();
    // Logins the map lists for sender (exact address first, then @domain).
    std::vector<std::string> listed_owners(std::string_view sender) const;

private:
    std::string path_;
    long long mtime_ = -1;
    std::map<std::string, std::vector<std::string>, std::less<>> owners_;
};

// The whole rule above.  login is the canonical login from the auth daemon.
// tables may be null (then only the login's own address and the map count).
bool sender_owned_by(std::string_view sender, std::string_view login, const SenderLogins& map,
                     const RecipientCheck* tables, std::string_view delimiters);

}  // namespace tern::tables
