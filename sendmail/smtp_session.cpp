// sendmail -bs: a minimal SMTP dialogue (RFC 5321) on standard input and
// output, for programs that speak SMTP to a local sendmail.  Accepted
// messages go into the maildrop exactly like `sendmail` mode; there is no
// network, no TLS and no AUTH: the submitter is the calling user.
#include <sysexits.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <optional>

#include "lib/smtp/command.hpp"
#include "sendmail/drop.hpp"
#include "sendmail/input.hpp"
#include "sendmail/submit.hpp"

namespace tern::sendmail {

namespace {

constexpr size_t kMaxRecipients = 1000;
constexpr int kMaxErrors = 20;

bool reply(const std::string& text) {
    std::string out = text + "\r\n";
    std::string_view rest = out;
    while (!rest.empty()) {
        ssize_t n = ::write(STDOUT_FILENO, rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        rest.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

}  // namespace

int smtp_session(const Options& options, const config::Config& config) {
    std::string host = config.get("myhostname");
    std::string fullname;
    auto me = user_address(config, &fullname);
    if (!me) {
        reply("421 4.3.0 " + host + " " + me.message());
        return EX_OSERR;
    }
    LineReader in(STDIN_FILENO);
    smtp::ParameterPolicy policy;
    policy.binarymime = false;
    policy.auth = false;
    policy.dsn = false;
    std::optional<std::string> sender;
    std::vector<std::string> recipients;
    int errors = 0;
    if (!reply("220 " + host + " ESMTP tern (sendmail -bs)")) return EX_IOERR;
    for (;;) {
        if (errors >= kMaxErrors) {
            reply("421 4.7.0 " + host + " Error: too many errors");
            return EX_PROTOCOL;
        }
        bool eof = false, newline = true;
        auto line = in.next(&eof, &newline);
        if (!line) return EX_NOINPUT;
        if (eof) return EX_OK;  // the client went away; nothing half-queued
        if (!newline && line->size() >= LineReader::kMaxLine) {
            reply("500 5.5.2 Error: line too long");
            return EX_PROTOCOL;
        }
        smtp::Command cmd = smtp::parse_command(*line);
        switch (cmd.verb) {
        case smtp::Verb::Helo:
            reply("250 " + host);
            break;
        case smtp::Verb::Ehlo:
            reply("250-" + host);
            reply("250-PIPELINING");
            reply("250-8BITMIME");
            reply("250 SMTPUTF8");
            break;
        case smtp::Verb::Mail: {
            if (sender) {
                reply("503 5.5.1 Error: nested MAIL command");
                ++errors;
                break;
            }
            auto mail = smtp::parse_mail_from(cmd.args, policy);
            if (!mail) {
                reply(mail.message());
                ++errors;
                break;
            }
            sender = mail->sender.address;
            reply("250 2.1.0 Ok");
            break;
        }
        case smtp::Verb::Rcpt: {
            if (!sender) {
                reply("503 5.5.1 Error: need MAIL command");
                ++errors;
                break;
            }
            if (recipients.size() >= kMaxRecipients) {
                reply("452 4.5.3 Error: too many recipients");
                break;
            }
            auto rcpt = smtp::parse_rcpt_to(cmd.args, policy, true);
            if (!rcpt) {
                reply(rcpt.message());
                ++errors;
                break;
            }
            recipients.push_back(qualify(rcpt->recipient.address.empty() ? "postmaster" : rcpt->recipient.address,
                                         config));
            reply("250 2.1.5 Ok");
            break;
        }
        case smtp::Verb::Data: {
            if (!sender) {
                reply("503 5.5.1 Error: need MAIL command");
                ++errors;
                break;
            }
            if (recipients.empty()) {
                reply("554 5.5.1 Error: no valid recipients");
                ++errors;
                break;
            }
            maildrop::Envelope env;
            env.time = ::time(nullptr);
            env.uid = ::getuid();
            env.sender = qualify(*sender, config);
            env.fullname = options.fullname.value_or(fullname);
            env.recipients = recipients;
            auto drop = Drop::begin(config, env);
            if (!drop) {
                reply("451 4.3.0 Error: queue file write error");
                return EX_TEMPFAIL;
            }
            reply("354 End data with <CR><LF>.<CR><LF>");
            std::optional<std::string> failure;
            for (;;) {
                auto l = in.next(&eof, &newline);
                if (!l) return EX_NOINPUT;
                if (eof) return EX_NOINPUT;  // no final dot: the Drop is discarded
                if (newline && *l == ".") break;
                // RFC 5321 4.5.2: remove one leading dot.
                if (!l->empty() && (*l)[0] == '.') l->erase(0, 1);
                if (newline) *l += '\n';
                if (!failure)
                    if (auto st = drop->write(*l); !st)
                        failure = drop->too_large() ? "552 5.3.4 Error: message file too big"
                                                    : "451 4.3.0 Error: queue file write error";
            }
            if (!failure) {
                auto name = drop->commit();
                if (name) {
                    reply("250 2.0.0 Ok: queued as " + *name);
                    notify_qmgr(config, false);
                } else {
                    failure = "451 4.3.0 Error: queue file write error";
                }
            }
            if (failure) reply(*failure);
            sender.reset();
            recipients.clear();
            break;
        }
        case smtp::Verb::Rset:
            sender.reset();
            recipients.clear();
            reply("250 2.0.0 Ok");
            break;
        case smtp::Verb::Noop:
            reply("250 2.0.0 Ok");
            break;
        case smtp::Verb::Vrfy:
            reply("252 2.0.0 Send some mail, I'll try my best");
            break;
        case smtp::Verb::Quit:
            reply("221 2.0.0 Bye");
            return EX_OK;
        case smtp::Verb::Help:
            reply("214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY QUIT");
            break;
        default:
            reply("502 5.5.2 Error: command not recognized");
            ++errors;
            break;
        }
    }
}

}  // namespace tern::sendmail
