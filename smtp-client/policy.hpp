// Per-destination policy for remote delivery: where mail for a domain goes
// (transport_maps, then relayhost, then the domain's own MX hosts), the TLS
// level (smtp_tls_policy_maps keyed by that next hop or by the domain, else
// smtp_tls_security_level), and SMTP AUTH credentials for the next hop
// (smtp_sasl_password_maps).  Authenticating never happens in the clear:
// a next hop with credentials gets at least the "encrypt" level.
//
// The credentials file is read only when its owner is the user we run as
// and nobody else may read it (mode 0600 or 0400); otherwise its mail is
// deferred and the reason logged, so a leaked password file is noticed.
#pragma once

#include <optional>
#include <string>

#include "lib/config/config.hpp"
#include "lib/core/result.hpp"
#include "lib/delivery/request.hpp"
#include "lib/tables/credentials.hpp"
#include "lib/tables/domain_map.hpp"
#include "smtp-client/settings.hpp"

namespace tern::smtpc {

struct Plan {
    bool refused = false;  // transport error:text, or a table that cannot be read
    delivery::Outcome outcome = delivery::Outcome::Deferred;
    std::string dsn, text;
    std::string nexthop;  // "example.org" (MX lookup) or "[host]:port"
    TlsLevel level = TlsLevel::May;
    bool level_from_table = false;  // smtp_tls_policy_maps or AUTH chose it: MTA-STS does not apply
    std::optional<tables::Credentials> auth;
};

class Policy {
public:
    static Result<Policy> open(const config::Config& config, TlsLevel default_level);
    Plan plan(const std::string& domain);

private:
    tables::DomainMap transports_, tls_;
    std::string relayhost_, sasl_path_;
    TlsLevel default_level_ = TlsLevel::May;
};

}  // namespace tern::smtpc
