// Authenticated submission (RFC 6409, RFC 4954): what smtpd needs beyond
// plain SMTP once clients log in.  One Submission per smtpd process, owned
// by the Server: the auth daemon client (lib/auth), the AUTH settings, the
// sender-ownership map and the per-account send limits.
//
//   - AUTH is offered on submission and smtps services (and in smtp mode
//     with smtpd_sasl_auth_enable), only inside TLS (smtpd_tls_auth_only)
//     except to loopback clients (smtpd_sasl_loopback_plaintext);
//   - in submission and smtps mode MAIL needs a login (530 5.7.0);
//   - the envelope sender must be owned by the login (553 5.7.1,
//     lib/tables/sender_logins.hpp has the rule);
//   - per account, at most smtpd_auth_message_limit messages and
//     smtpd_auth_recipient_limit recipients per smtpd_auth_limit_window;
//     going over blocks the account for smtpd_auth_block_time in the shared
//     lib/policy store (`mailctl block list|clear`) and answers 4xx.
#pragma once

#include <memory>
#include <string>

#include "lib/auth/client.hpp"
#include "lib/config/config.hpp"
#include "lib/policy/limits.hpp"
#include "lib/tables/sender_logins.hpp"

namespace tern::smtpd {

struct SubmissionSettings {
    bool offer_auth = false;         // mode submission/smtps, or smtpd_sasl_auth_enable
    bool auth_required = false;      // mode submission/smtps
    bool tls_auth_only = true;
    bool loopback_plaintext = true;
    bool hide_client = false;
    long long message_limit = 0;
    long long recipient_limit = 0;
    policy::Limits account_limits;   // unit = window, block = block time
    std::string delimiters;
};

class Submission {
public:
    static Result<std::unique_ptr<Submission>> create(event_base* base, const config::Config& config,
                                                      bool submission_mode);
    const SubmissionSettings& settings() const { return settings_; }
    auth::Client& auth() { return client_; }
    // Whether AUTH is offered to a client in this state.
    bool offers_auth(bool tls, bool loopback) const;
    // Sender ownership (re-reads the map file when it changed).
    bool sender_allowed(std::string_view sender, std::string_view login, const tables::RecipientCheck& tables);

private:
    Submission(event_base* base, const std::string& socket) : client_(base, socket) {}
    SubmissionSettings settings_;
    auth::Client client_;
    tables::SenderLogins sender_logins_;
};

}  // namespace tern::smtpd
