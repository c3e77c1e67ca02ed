// SMTP AUTH (RFC 4954) and the submission checks that depend on it:
// the AUTH command and its SASL exchange (lib/auth/sasl), the check by the
// auth daemon (lib/auth/client, never blocking the loop: reading stops
// until the answer, like during a queue commit), the sender-ownership and
// per-account limit checks at MAIL and RCPT.  See submission.hpp.
#include <event2/bufferevent.h>

#include "lib/log/log.hpp"
#include "lib/sys/clock.hpp"
#include "smtpd/server.hpp"
#include "smtpd/session.hpp"
#include "smtpd/submission.hpp"

namespace tern::smtpd {

bool Session::auth_offered() const {
    const Submission* sub = server_.submission();
    return sub && sasl_user_.empty() && sub->offers_auth(tls_, loopback_);
}

bool Session::cmd_auth(const smtp::Command& cmd) {
    Submission* sub = server_.submission();
    if (!sub || !sub->settings().offer_auth) {
        error_reply("503 5.5.1 Error: authentication not enabled");
        return false;
    }
    if (!esmtp_) {
        error_reply("503 5.5.1 Error: send EHLO first");
        return false;
    }
    if (!sasl_user_.empty()) {
        error_reply("503 5.5.1 Error: already authenticated");
        return false;
    }
    if (have_mail_) {
        error_reply("503 5.5.1 Error: MAIL transaction in progress");
        return false;
    }
    if (!auth_offered()) {
        // RFC 4954 4: 538 when TLS would make the mechanism available.
        error_reply("538 5.7.11 Encryption required for requested authentication mechanism");
        return false;
    }
    std::string_view args = cmd.args;
    size_t space = args.find(' ');
    std::string_view mechanism = args.substr(0, space);
    std::optional<std::string_view> initial;
    if (space != std::string_view::npos) initial = args.substr(space + 1);
    if (mechanism.empty()) {
        error_reply("501 5.5.4 Syntax: AUTH mechanism");
        return false;
    }
    if (!auth::SaslExchange::supported(mechanism)) {
        error_reply("504 5.5.4 Unrecognized authentication type");
        return false;
    }
    sasl_ = std::make_unique<auth::SaslExchange>();
    return auth_step(sasl_->start(mechanism, initial));
}

void Session::auth_continue(std::string_view line) { (void)auth_step(sasl_->next(line)); }

bool Session::auth_step(const auth::SaslStep& step) {
    switch (step.state) {
    case auth::SaslState::challenge:
        reply_line("334 " + step.challenge);
        return true;
    case auth::SaslState::cancelled:
        sasl_.reset();
        error_reply("501 5.0.0 Authentication aborted");
        return false;
    case auth::SaslState::failed:
        sasl_.reset();
        error_reply("501 5.5.2 Error: " + step.error);
        return false;
    case auth::SaslState::done:
        break;
    }
    auth::Request request;
    request.mechanism = sasl_->mechanism();
    request.credentials = sasl_->credentials();
    request.client_ip = addr_;
    request.service = "smtp";
    request.secured = tls_ || loopback_;
    // Like a queue commit: stop reading until the answer (pipelined commands wait).
    input_ = Input::Waiting;
    disable_reading();
    std::weak_ptr<Session> weak = weak_from_this();
    auth_ticket_ = server_.submission()->auth().check(request, [weak](const auth::Answer& answer) {
        if (auto self = weak.lock()) self->auth_answered(answer);
    });
    return true;
}

void Session::auth_answered(const auth::Answer& answer) {
    auth_ticket_ = 0;
    std::string method = sasl_ ? sasl_->mechanism() : "";
    sasl_.reset();
    if (!bev_ || input_ != Input::Waiting) return;
    input_ = Input::Command;
    if (answer.outcome == auth::Outcome::ok) {
        sasl_user_ = answer.user;
        sasl_method_ = method;
        reply(235, "2.7.0", "Authentication successful");
    } else if (answer.outcome == auth::Outcome::fail) {
        log::warning("%s: SASL %s authentication failed: %s", peer_.c_str(), method.c_str(), answer.reason.c_str());
        error_reply("535 5.7.8 Error: authentication failed: authentication failure");
    } else {
        log::warning("%s: SASL %s authentication temporarily failed: %s", peer_.c_str(), method.c_str(),
                     answer.reason.c_str());
        reply(454, "4.7.0", "Temporary authentication failure");
    }
    if (!bev_ || input_ != Input::Command) return;  // the error limit closed the session
    enable_reading();
    process();
}

void Session::auth_cancel() {
    if (auth_ticket_ != 0 && server_.submission()) server_.submission()->auth().cancel(auth_ticket_);
    auth_ticket_ = 0;
}

bool Session::submission_mail_allowed(const std::string& sender) {
    Submission* sub = server_.submission();
    if (!sub) return true;
    if (sasl_user_.empty()) {
        if (!sub->settings().auth_required) return true;
        error_reply("530 5.7.0 Authentication required");
        return false;
    }
    if (!sub->sender_allowed(sender, sasl_user_, server_.recipients())) {
        log::info("NOQUEUE: reject: MAIL from %s: 553 5.7.1 <%s>: Sender address rejected: not owned by user %s; "
                  "proto=ESMTP helo=<%s>",
                  peer_.c_str(), sender.c_str(), sasl_user_.c_str(), helo_.c_str());
        error_reply("553 5.7.1 <" + sender + ">: Sender address rejected: not owned by user " + sasl_user_);
        return false;
    }
    return account_within_limits(1, 0);
}

bool Session::account_within_limits(long long messages, long long recipients) {
    Submission* sub = server_.submission();
    policy::LimitsStore* store = server_.limits();
    if (!sub || !store || sasl_user_.empty()) return true;
    const SubmissionSettings& s = sub->settings();
    int64_t now = sys::now_s();
    auto blocked = store->blocked(policy::Kind::Account, sasl_user_, now);
    bool over = blocked && *blocked;
    std::optional<policy::Block> new_block;
    if (!over && messages > 0) {
        auto v = store->count_message(policy::Kind::Account, sasl_user_, s.message_limit, s.account_limits, now);
        if (v && !v->allowed) over = true, new_block = v->new_block;
    }
    if (!over && recipients > 0) {
        auto v = store->count_account_recipients(sasl_user_, recipients, s.recipient_limit, s.account_limits, now);
        if (v && !v->allowed) over = true, new_block = v->new_block;
    }
    if (!over) return true;
    if (new_block)
        log::warning("blocked account %s for %llds: %s (client %s)", sasl_user_.c_str(),
                     static_cast<long long>(s.account_limits.block_seconds), new_block->reason.c_str(), peer_.c_str());
    error_reply("451 4.7.1 Error: sending limit exceeded for " + sasl_user_ + ", try again later");
    return false;
}

}  // namespace tern::smtpd
