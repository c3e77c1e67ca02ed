// Authenticated submission settings and checks: see submission.hpp.
#include "smtpd/submission.hpp"

#include "lib/log/log.hpp"

namespace tern::smtpd {

Result<std::unique_ptr<Submission>> Submission::create(event_base* base, const config::Config& c,
                                                      bool submission_mode) {
    std::unique_ptr<Submission> sub(new Submission(base, c.get("auth_socket")));
    SubmissionSettings& s = sub->settings_;
    s.auth_required = submission_mode;
    s.offer_auth = submission_mode || c.get_bool("smtpd_sasl_auth_enable");
    s.tls_auth_only = c.get_bool("smtpd_tls_auth_only");
    s.loopback_plaintext = c.get_bool("smtpd_sasl_loopback_plaintext");
    s.hide_client = c.get_bool("smtpd_sasl_hide_client");
    s.message_limit = c.get_int("smtpd_auth_message_limit");
    s.recipient_limit = c.get_int("smtpd_auth_recipient_limit");
    s.account_limits.unit_seconds = std::max<int64_t>(1, c.get_duration("smtpd_auth_limit_window").count());
    s.account_limits.block_seconds = c.get_duration("smtpd_auth_block_time").count();
    s.delimiters = c.get("recipient_delimiter");
    auto map = tables::SenderLogins::load(c.get("smtpd_sender_login_maps"));
    if (!map) return Error{"smtpd_sender_login_maps: " + map.message()};
    sub->sender_logins_ = std::move(*map);
    return sub;
}

bool Submission::offers_auth(bool tls, bool loopback) const {
    if (!settings_.offer_auth) return false;
    if (tls || !settings_.tls_auth_only) return true;
    return loopback && settings_.loopback_plaintext;
}

bool Submission::sender_allowed(std::string_view sender, std::string_view login, const tables::RecipientCheck& tables) {
    if (auto st = sender_logins_.reload_if_changed(); !st)
        log::warning("smtpd_sender_login_maps: %s (keeping the previous map)", st.message().c_str());
    return tables::sender_owned_by(sender, login, sender_logins_, &tables, settings_.delimiters);
}

}  // namespace tern::smtpd
