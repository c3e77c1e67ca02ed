// The AUTHORIZATION state (RFC 1939 4, RFC 5034): USER/PASS and AUTH,
// checked by the auth daemon (pop3d never sees password data), then the
// mailbox lock and the snapshot of INBOX.
//
// Plaintext passwords are refused off TLS unless the client is in
// pop3d_secure_networks (loopback by default), as RFC 2595 and RFC 8314
// ask.  Failed logins are slowed down and blocked by the auth daemon; a
// session that fails three times is closed.
#include <event2/bufferevent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lib/log/log.hpp"
#include "lib/log/loggable.hpp"
#include "lib/mailstore/maildir_store.hpp"
#include "pop3d/server.hpp"
#include "pop3d/session.hpp"

namespace tern::pop3d {
namespace {

constexpr int kMaxAuthFailures = 3;

// A login as logs may show it: printable, bounded.
std::string loggable(std::string_view s) { return log::loggable(s, 256); }

std::string sha256_hex(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 15]);
    }
    return out;
}

}  // namespace

bool Session::may_login() { return tls_ || secure_network_; }

void Session::cmd_user(const pop3::Command& cmd) {
    if (!may_login()) return error("", "plaintext login is not allowed without TLS: use STLS first");
    user_arg_ = std::string(cmd.args[0]);
    send(pop3::ok("send the password with PASS"));
}

void Session::cmd_pass(const pop3::Command& cmd) {
    if (!may_login()) return error("", "plaintext login is not allowed without TLS: use STLS first");
    if (user_arg_.empty()) return error("", "send USER first");
    if (cmd.rest.size() > auth::kMaxField) return error("AUTH", "authentication failed");
    auth::Credentials c;
    c.authcid = std::move(user_arg_);
    c.password = std::string(cmd.rest);
    user_arg_.clear();
    check_credentials("PLAIN", std::move(c));
}

// RFC 5034 4: AUTH mechanism [initial-response]; AUTH alone lists the
// mechanisms, as most servers do.
void Session::cmd_auth(const pop3::Command& cmd) {
    if (cmd.args.empty()) {
        std::string out = pop3::ok("SASL mechanisms follow");
        std::string_view mechs = auth::SaslExchange::mechanisms();
        for (size_t pos = 0; pos < mechs.size();) {
            size_t sp = mechs.find(' ', pos);
            if (sp == std::string_view::npos) sp = mechs.size();
            out += std::string(mechs.substr(pos, sp - pos)) + "\r\n";
            pos = sp + 1;
        }
        send(out + ".\r\n");
        return;
    }
    if (!may_login()) return error("", "plaintext login is not allowed without TLS: use STLS first");
    if (!auth::SaslExchange::supported(cmd.args[0]))
        return error("", "unsupported authentication mechanism: " + std::string(cmd.args[0]));
    std::optional<std::string_view> initial;
    if (cmd.args.size() == 2) initial = cmd.args[1];
    sasl_.emplace();
    sasl_step(sasl_->start(cmd.args[0], initial));
}

void Session::sasl_line(std::string_view line) {
    if (sasl_) sasl_step(sasl_->next(line));
}

void Session::sasl_step(const auth::SaslStep& step) {
    switch (step.state) {
    case auth::SaslState::challenge:
        input_ = Input::SaslLine;
        send("+ " + step.challenge + "\r\n");
        return;
    case auth::SaslState::done: {
        std::string mechanism = sasl_->mechanism();
        auth::Credentials c = sasl_->credentials();
        sasl_.reset();
        check_credentials(std::move(mechanism), std::move(c));
        return;
    }
    case auth::SaslState::cancelled:
        sasl_.reset();
        input_ = Input::Command;
        return error("", "authentication cancelled");
    case auth::SaslState::failed:
        sasl_.reset();
        input_ = Input::Command;
        return error("", step.error);
    }
}

void Session::check_credentials(std::string mechanism, auth::Credentials credentials) {
    auth::Request req;
    req.mechanism = std::move(mechanism);
    req.credentials = std::move(credentials);
    req.client_ip = addr_;
    req.service = "pop3";
    req.secured = may_login();
    std::string login = loggable(req.credentials.authcid);
    input_ = Input::Waiting;
    bufferevent_disable(bev_, EV_READ);
    ticket_ = server_.auth().check(req, [this, login](const auth::Answer& a) {
        ticket_ = 0;
        if (a.outcome == auth::Outcome::ok && a.system_user) {
            serve_system_user(a);  // reading resumes in the backend, or after its -ERR
            return;
        }
        if (a.outcome == auth::Outcome::ok) {
            logged_in(a);
        } else if (a.outcome == auth::Outcome::tempfail) {
            log::warning("login of %s from %s: temporary failure: %s", login.c_str(), peer_.c_str(),
                         loggable(a.reason).c_str());
            send(pop3::err("SYS/TEMP", "authentication is temporarily unavailable, try again later"));
        } else {
            // RFC 3206 / RFC 2449 8: [AUTH] says the credentials are wrong.
            send(pop3::err("AUTH", "authentication failed"));
            if (++auth_failures_ >= kMaxAuthFailures) {
                log::info("too many failed logins from %s", peer_.c_str());
                send(pop3::err("", "too many failed logins, closing the connection"));
                close_after_reply();
                return;
            }
        }
        resume();
    });
    std::fill(req.credentials.password.begin(), req.credentials.password.end(), '\0');
}

// RFC 1939 8 wants an exclusive lock on the maildrop; [IN-USE] (RFC 2449 8.1.1)
// tells a second session that it is held.  A flock on a file per user
// under mail_directory, so that every pop3d process sees it, and it goes
// with the process if it dies.
bool Session::lock_mailbox(const std::string& user) {
    const Settings& settings = server_.settings();
    if (!settings.lock_session) return true;
    std::string path = settings.lock_directory + "/" + sha256_hex(user);
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) {
        log::warning("cannot open lock file %s: %s (serving user=<%s> without the lock)", path.c_str(),
                     strerror(errno), loggable(user).c_str());
        return true;
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) return false;
    lock_ = std::move(fd);
    return true;
}

void Session::logged_in(const auth::Answer& a) {
    std::string user = loggable(a.user);
    if (!lock_mailbox(a.user)) {
        log::info("login of %s from %s: mailbox in use by another POP3 session", user.c_str(), peer_.c_str());
        send(pop3::err("IN-USE", "your mailbox is in use by another POP3 session"));
        return;
    }
    if (!open_maildrop(user, a.mail, a.quota)) return;
    user_ = user;
    state_ = State::Transaction;
    auto t = maildrop_->totals();
    log::info("login: user=<%s>, rip=%s, tls=%s, messages=%u, size=%llu", user_.c_str(), addr_.c_str(),
              tls_ ? "yes" : "no", t.messages, static_cast<unsigned long long>(t.octets));
    send(pop3::ok("logged in, " + std::to_string(t.messages) + " messages (" + std::to_string(t.octets) + " octets)"));
}

bool Session::open_maildrop(const std::string& user, const std::string& mail, uint64_t quota) {
    auto fail = [&](const std::string& what) {
        log::warning("login of %s from %s: %s", user.c_str(), peer_.c_str(), what.c_str());
        lock_ = Fd();
        send(pop3::err("SYS/TEMP", "your mailbox is unavailable, try again later"));
        return false;
    };
    mailstore::MaildirOptions options;
    options.root = mail;
    options.quota_bytes = quota;  // deletions are taken off the Maildir++ quota file
    auto store = mailstore::open_maildir_store(options);
    if (!store) return fail("cannot open the mail store " + mail + ": " + store.message());
    auto inbox = (*store)->open(std::string(mailstore::kInbox));
    if (!inbox) return fail("cannot open INBOX in " + mail + ": " + inbox.message());
    auto drop = pop3::Maildrop::load(std::move(*inbox));
    if (!drop) return fail("cannot read INBOX in " + mail + ": " + drop.message());
    store_ = std::move(*store);
    maildrop_.emplace(std::move(*drop));
    return true;
}

}  // namespace tern::pop3d
