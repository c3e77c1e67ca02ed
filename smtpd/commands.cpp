// SMTP command handlers (RFC 5321 4.1.1, with the ESMTP extensions smtpd
// offers).  Reply texts follow Postfix's where one exists, so that clients'
// and admins' expectations carry over.
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "lib/log/log.hpp"
#include "lib/smtp/reply.hpp"
#include "lib/sys/clock.hpp"
#include "smtpd/policy.hpp"
#include "smtpd/server.hpp"
#include "smtpd/session.hpp"

namespace tern::smtpd {

void Session::dispatch(std::string_view line) {
    if (sasl_) {  // a line of the SASL exchange (RFC 4954 4), not a command
        auth_continue(line);
        return;
    }
    smtp::Command cmd = smtp::parse_command(line);
    auto& count = counts_[static_cast<size_t>(cmd.verb)];
    ++commands_;
    ++count.second;
    last_command_ = cmd.verb == smtp::Verb::Unknown ? "UNKNOWN" : std::string(cmd.name.substr(0, 16));
    for (auto& ch : last_command_) ch = static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
    bool ok = false;
    switch (cmd.verb) {
    case smtp::Verb::Helo: ok = cmd_helo(cmd, false); break;
    case smtp::Verb::Ehlo: ok = cmd_helo(cmd, true); break;
    case smtp::Verb::Mail: ok = cmd_mail(cmd); break;
    case smtp::Verb::Rcpt: ok = cmd_rcpt(cmd); break;
    case smtp::Verb::Data: ok = cmd_data(cmd); break;
    case smtp::Verb::Bdat: ok = cmd_bdat(cmd); break;
    case smtp::Verb::Rset: ok = cmd_rset(cmd); break;
    case smtp::Verb::Noop:
        reply(250, "2.0.0", "Ok");
        ok = true;
        break;
    case smtp::Verb::Quit:
        reply(221, "2.0.0", "Bye");
        quitting_ = true;
        close_after_reply();
        ok = true;
        break;
    case smtp::Verb::Help: ok = cmd_help(); break;
    case smtp::Verb::Vrfy: ok = cmd_vrfy(cmd); break;
    case smtp::Verb::Expn: error_reply("502 5.5.1 Error: EXPN is not offered"); break;
    case smtp::Verb::Starttls: ok = cmd_starttls(cmd); break;
    case smtp::Verb::Auth: ok = cmd_auth(cmd); break;
    // RFC 5321 4.2.4: 500 for a command not recognised; 502 is for one
    // recognised but refused on purpose, like EXPN (it would disclose
    // alias and list members, so tern, like Postfix setups, never offers it).
    case smtp::Verb::Unknown: error_reply("500 5.5.2 Error: command not recognized"); break;
    }
    if (ok) {
        ++count.first;
        ++command_ok_;
    }
}

bool Session::cmd_helo(const smtp::Command& cmd, bool extended) {
    const Settings& settings = server_.settings();
    if (cmd.args.empty()) {
        error_reply(extended ? "501 5.5.4 Syntax: EHLO hostname" : "501 5.5.4 Syntax: HELO hostname");
        return false;
    }
    // RFC 5321 4.1.4: EHLO/HELO mid-transaction resets it.
    reset_transaction();
    helo_ = std::string(cmd.args.substr(0, 255));
    esmtp_ = extended;
    if (!extended) {
        reply(250, "", settings.myhostname);
        return true;
    }
    std::vector<std::string> lines{settings.myhostname, "PIPELINING"};
    lines.push_back(settings.message_size_limit ? "SIZE " + std::to_string(settings.message_size_limit) : "SIZE");
    if (settings.vrfy) lines.push_back("VRFY");
    if (server_.tls() && !tls_ && settings.tls_level != TlsLevel::None) lines.push_back("STARTTLS");
    if (auth_offered()) lines.push_back(std::string("AUTH ") + auth::SaslExchange::mechanisms());
    lines.insert(lines.end(), {"ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING"});
    send(smtp::format_multiline(250, "", lines));
    return true;
}

bool Session::need_tls_first() {
    if (server_.settings().tls_level != TlsLevel::Encrypt || tls_) return false;
    error_reply("530 5.7.0 Must issue a STARTTLS command first");
    return true;
}

bool Session::may_relay() const { return in_mynetworks_ || !sasl_user_.empty(); }

std::string Session::reject_context() const {
    return "from=<" + mail_.sender.address + "> proto=" + (esmtp_ ? "ESMTP" : "SMTP") + " helo=<" + helo_ + ">";
}

bool Session::cmd_mail(const smtp::Command& cmd) {
    const Settings& settings = server_.settings();
    if (helo_.empty()) {
        error_reply("503 5.5.1 Error: send HELO/EHLO first");
        return false;
    }
    if (need_tls_first()) return false;
    if (have_mail_) {
        error_reply("503 5.5.1 Error: nested MAIL command");
        return false;
    }
    smtp::ParameterPolicy params;
    params.binarymime = false;  // the queue stores LF lines: binary content cannot round-trip
    params.auth = true;
    auto mail = smtp::parse_mail_from(cmd.args, params);
    if (!mail) {
        error_reply(mail.message());
        return false;
    }
    if (settings.message_size_limit && mail->size && *mail->size > settings.message_size_limit) {
        error_reply("552 5.3.4 Message size exceeds fixed limit");
        return false;
    }
    if (!submission_mail_allowed(mail->sender.address)) return false;
    if (auto* limits = server_.limits(); limits && !settings.limits.exceptions.contains(addr_)) {
        int64_t now = sys::now_s();
        const std::string& sender = mail->sender.address;
        if (!sender.empty()) {
            auto blocked = limits->blocked(policy::Kind::Sender, sender, now);
            if (blocked && *blocked) {
                error_reply("450 4.7.1 <" + sender + ">: Sender address rejected: rate limit exceeded, try later");
                return false;
            }
        }
        auto client = limits->count_message(policy::Kind::Client, addr_, settings.limits.client_message_rate,
                                            settings.limits, now);
        if (client && !client->allowed) {
            if (client->new_block)
                log::warning("blocked client %s for %llds: %s", addr_.c_str(),
                             static_cast<long long>(settings.limits.block_seconds), client->new_block->reason.c_str());
            reply_line("421 4.7.0 " + settings.myhostname + " Error: too many messages from " + addr_ +
                       ", rate limit exceeded, try later");
            close_after_reply();
            return false;
        }
        if (!sender.empty()) {
            auto s = limits->count_message(policy::Kind::Sender, sender, settings.limits.sender_message_rate,
                                           settings.limits, now);
            if (s && !s->allowed) {
                if (s->new_block)
                    log::warning("blocked sender %s for %llds: %s", sender.c_str(),
                                 static_cast<long long>(settings.limits.block_seconds), s->new_block->reason.c_str());
                error_reply("450 4.7.1 <" + sender + ">: Sender address rejected: rate limit exceeded, try later");
                return false;
            }
        }
    }
    mail_ = std::move(*mail);
    have_mail_ = true;
    reply(250, "2.1.0", "Ok");
    return true;
}

bool Session::cmd_rcpt(const smtp::Command& cmd) {
    const Settings& settings = server_.settings();
    if (!have_mail_) {
        error_reply("503 5.5.1 Error: need MAIL command");
        return false;
    }
    if (bdat_remaining_ || chunks_) {
        error_reply("503 5.5.1 Error: RCPT after BDAT");
        return false;
    }
    smtp::ParameterPolicy params;
    auto rcpt = smtp::parse_rcpt_to(cmd.args, params, mail_.smtputf8);
    if (!rcpt) {
        error_reply(rcpt.message());
        return false;
    }
    if (settings.recipient_limit > 0 && static_cast<long long>(rcpts_.size()) >= settings.recipient_limit) {
        // RFC 5321 4.5.3.1.10: 452 tells the client to send the rest later.
        reply(452, "4.5.3", "Error: too many recipients");
        return false;
    }
    auto verdict = check_recipient(server_, rcpt->recipient, may_relay());
    if (!verdict.accepted) {
        log::info("NOQUEUE: reject: RCPT from %s: %s; %s to=<%s>", peer_.c_str(), verdict.reply.c_str(),
                  reject_context().c_str(), rcpt->recipient.address.c_str());
        error_reply(verdict.reply);
        return false;
    }
    if (!account_within_limits(0, 1)) return false;
    queue::Recipient r;
    r.index = static_cast<uint32_t>(rcpts_.size());
    r.address = rcpt->recipient.address;
    r.orcpt = rcpt->orcpt;
    r.notify = rcpt->notify;
    rcpts_.push_back(std::move(r));
    reply(250, "2.1.5", "Ok");
    return true;
}

bool Session::cmd_data(const smtp::Command& cmd) {
    if (!cmd.args.empty()) {
        error_reply("501 5.5.4 Syntax: DATA");
        return false;
    }
    if (!have_mail_) {
        error_reply("503 5.5.1 Error: need MAIL command");
        return false;
    }
    if (rcpts_.empty()) {
        error_reply("554 5.5.1 Error: no valid recipients");
        return false;
    }
    if (chunks_) {
        error_reply("503 5.5.1 Error: DATA after BDAT");
        return false;
    }
    begin_body();
    smtp::DataLimits limits{server_.settings().message_size_limit, 0};
    data_ = std::make_unique<smtp::DataDecoder>(limits);
    data_started_ms_ = sys::monotonic_ms();
    input_ = Input::Data;
    set_timeout(server_.settings().data_timeout);
    reply(354, "", "End data with <CR><LF>.<CR><LF>");
    return true;
}

// RFC 3030: the chunk's bytes follow the command whatever the answer, so
// they are always read (and thrown away when the command is refused).
bool Session::cmd_bdat(const smtp::Command& cmd) {
    auto args = smtp::parse_bdat(cmd.args);
    if (!args) {
        // Without a size we cannot find the next command: stop here.
        reply_line(args.message());
        close_after_reply();
        return false;
    }
    bdat_remaining_ = args->size;
    bdat_last_ = args->last;
    bdat_error_.clear();
    if (bdat_failed_) bdat_error_ = "503 5.5.1 Error: earlier BDAT failed, send RSET";
    else if (!have_mail_) bdat_error_ = "503 5.5.1 Error: need MAIL command";
    else if (rcpts_.empty()) bdat_error_ = "554 5.5.1 Error: no valid recipients";
    else if (data_) bdat_error_ = "503 5.5.1 Error: BDAT during DATA";
    if (bdat_error_.empty() && !chunks_) {
        begin_body();
        smtp::DataLimits limits{server_.settings().message_size_limit, 0};
        chunks_ = std::make_unique<smtp::ChunkDecoder>(limits);
        data_started_ms_ = sys::monotonic_ms();
    }
    input_ = Input::Bdat;
    set_timeout(server_.settings().data_timeout);
    return bdat_error_.empty();
}

bool Session::cmd_rset(const smtp::Command& cmd) {
    if (!cmd.args.empty()) {
        error_reply("501 5.5.4 Syntax: RSET");
        return false;
    }
    reset_transaction();
    reply(250, "2.0.0", "Ok");
    return true;
}

bool Session::cmd_help() {
    reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS AUTH");
    return true;
}

// RFC 5321 3.5.3: 252 says "cannot verify, will accept and try".  Real
// answers (smtpd_vrfy = yes) help address harvesters, hence off by default.
bool Session::cmd_vrfy(const smtp::Command& cmd) {
    if (cmd.args.empty()) {
        error_reply("501 5.5.4 Syntax: VRFY address");
        return false;
    }
    if (!server_.settings().vrfy) {
        reply(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery");
        return true;
    }
    address::PathOptions opts;
    opts.allow_postmaster = true;
    opts.allow_utf8 = true;
    opts.sender = false;
    auto path = address::parse_path(cmd.args, opts);
    if (!path) {
        error_reply(path.message());
        return false;
    }
    auto verdict = check_recipient(server_, *path, false);
    if (verdict.accepted) {
        reply_line("250 2.0.0 <" + path->address + ">");
        return true;
    }
    if (verdict.reply.rfind("554", 0) == 0) {  // not ours: nothing to say about it
        reply(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery");
        return true;
    }
    error_reply(verdict.reply);
    return false;
}

bool Session::cmd_starttls(const smtp::Command& cmd) {
    if (!cmd.args.empty()) {
        error_reply("501 5.5.4 Syntax: STARTTLS");
        return false;
    }
    if (tls_) {
        error_reply("554 5.5.1 Error: TLS already active");
        return false;
    }
    if (!server_.tls() || server_.settings().tls_level == TlsLevel::None) {
        error_reply("502 5.5.1 Error: STARTTLS is not offered on this service");
        return false;
    }
    reply(220, "2.0.0", "Ready to start TLS");
    start_tls();
    return true;
}

}  // namespace tern::smtpd
