// Command dispatch with the state machine (RFC 9051 3), the commands valid
// in any state (CAPABILITY, NOOP, LOGOUT, ID), and the way in: STARTTLS,
// LOGIN, AUTHENTICATE (SASL PLAIN/LOGIN with SASL-IR, RFC 4959), ENABLE.
#include <unistd.h>

#include "imapd/server.hpp"
#include "imapd/session.hpp"
#include "lib/imap/response.hpp"
#include "lib/log/log.hpp"
#include "lib/mailstore/maildir_store.hpp"

namespace tern::imapd {

using imap::Parser;

namespace {

enum : unsigned { kNotAuth = 1, kAuth = 2, kSelected = 4, kLoggedIn = kAuth | kSelected, kAny = 7 };

unsigned state_bit(State s) {
    switch (s) {
    case State::NotAuthenticated: return kNotAuth;
    case State::Authenticated: return kAuth;
    case State::Selected: return kSelected;
    case State::Logout: return 0;
    }
    return 0;
}

// Failed logins before the connection is closed (the auth daemon throttles
// per address and user on top of this).
constexpr int kMaxAuthFailures = 3;

// Log-safe copy of client text: printable ASCII, bounded.
std::string loggable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 200)) out += (c < 0x20 || c > 0x7e) ? '?' : c;
    return out;
}

}  // namespace

bool Session::may_authenticate() const {
    return tls_ || (loopback_ && server_.settings().plaintext_on_loopback);
}

std::string Session::capabilities() const {
    std::string caps = "IMAP4rev2 IMAP4rev1 LITERAL- SASL-IR ID ENABLE";
    if (state_ == State::NotAuthenticated) {
        if (server_.tls() && !tls_) caps += " STARTTLS";
        // RFC 9051 6.2.3 / 7.2.2: no plaintext passwords over an unencrypted
        // network connection; loopback is a local conversation.
        caps += may_authenticate() ? " AUTH=PLAIN AUTH=LOGIN" : " LOGINDISABLED";
        return caps;
    }
    caps += " IDLE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE"
            " CONDSTORE QRESYNC ESEARCH SEARCHRES SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES"
            " STATUS=SIZE BINARY MULTIAPPEND UTF8=ACCEPT QUOTA QUOTA=RES-STORAGE";
    if (!compression_) caps += " COMPRESS=DEFLATE";
    caps += " APPENDLIMIT=" + std::to_string(server_.settings().limits.append_max);
    return caps;
}

void Session::greeting() {
    greeted_ = true;
    untagged("OK [CAPABILITY " + capabilities() + "] tern IMAP server ready");
}

void Session::bad_syntax(const Parser& p) { tagged("BAD", "", "syntax error: " + p.error()); }

void Session::execute(std::string_view command) {
    Parser p(command);
    auto tag = p.tag();
    if (!tag) {
        tag_ = "*";
        tagged("BAD", "", "a command starts with a tag, then a space and the command name");
        return;
    }
    tag_ = std::string(*tag);
    auto word = p.sp() ? p.keyword() : std::nullopt;
    if (!word) {
        tagged("BAD", "", "expected a command name after the tag");
        return;
    }
    std::string name = imap::upper(*word);
    bool uid = false;
    if (name == "UID") {
        auto sub = p.sp() ? p.keyword() : std::nullopt;
        if (!sub) return bad_syntax(p);
        name = imap::upper(*sub);
        uid = true;
        if (name != "FETCH" && name != "STORE" && name != "COPY" && name != "MOVE" && name != "SEARCH" &&
            name != "EXPUNGE" && name != "SORT" && name != "THREAD") {
            tagged("BAD", "", "UID " + loggable(name) + " is not a command");
            return;
        }
    }
    struct Spec {
        const char* name;
        unsigned states;
        void (Session::*run)(Parser&);
    };
    static const Spec simple[] = {
        {"CAPABILITY", kAny, &Session::cmd_capability},     {"NOOP", kAny, &Session::cmd_noop},
        {"LOGOUT", kAny, &Session::cmd_logout},             {"ID", kAny, &Session::cmd_id},
        {"STARTTLS", kNotAuth, &Session::cmd_starttls},     {"LOGIN", kNotAuth, &Session::cmd_login},
        {"AUTHENTICATE", kNotAuth, &Session::cmd_authenticate}, {"ENABLE", kAuth, &Session::cmd_enable},
        {"NAMESPACE", kLoggedIn, &Session::cmd_namespace},  {"STATUS", kLoggedIn, &Session::cmd_status},
        {"CREATE", kLoggedIn, &Session::cmd_create},        {"DELETE", kLoggedIn, &Session::cmd_delete},
        {"RENAME", kLoggedIn, &Session::cmd_rename},        {"APPEND", kLoggedIn, &Session::cmd_append},
        {"IDLE", kLoggedIn, &Session::cmd_idle},            {"CHECK", kSelected, &Session::cmd_noop},
        {"GETQUOTA", kLoggedIn, &Session::cmd_getquota},    {"GETQUOTAROOT", kLoggedIn, &Session::cmd_getquotaroot},
        {"SETQUOTA", kLoggedIn, &Session::cmd_setquota},    {"COMPRESS", kLoggedIn, &Session::cmd_compress},
    };
    auto wrong_state = [&](unsigned states) {
        if (state_ == State::NotAuthenticated)
            tagged("BAD", "", name + " needs you to log in first (LOGIN or AUTHENTICATE)");
        else if (states == kNotAuth) tagged("BAD", "", name + " is only valid before logging in");
        else if (states == kSelected) tagged("BAD", "", name + " needs a selected mailbox (SELECT or EXAMINE one first)");
        else if (states == kAuth) tagged("BAD", "", name + " is only valid after logging in, with no mailbox selected");
        else tagged("BAD", "", name + " needs you to log in first (LOGIN or AUTHENTICATE)");
    };
    if (!uid) {
        for (const auto& s : simple) {
            if (name != s.name) continue;
            if (!(s.states & state_bit(state_))) return wrong_state(s.states);
            (this->*s.run)(p);
            return;
        }
    }
    struct Spec2 {
        const char* name;
        unsigned states;
        void (Session::*run)(Parser&, bool);
        bool arg;
    };
    static const Spec2 flagged[] = {
        {"LIST", kLoggedIn, &Session::cmd_list, false},       {"LSUB", kLoggedIn, &Session::cmd_list, true},
        {"SELECT", kLoggedIn, &Session::cmd_select, false},   {"EXAMINE", kLoggedIn, &Session::cmd_select, true},
        {"SUBSCRIBE", kLoggedIn, &Session::cmd_subscribe, true},
        {"UNSUBSCRIBE", kLoggedIn, &Session::cmd_subscribe, false},
        {"CLOSE", kSelected, &Session::cmd_close, true},      {"UNSELECT", kSelected, &Session::cmd_close, false}
    };
    if (!uid) {
        for (const auto& s : flagged) {
            if (name != s.name) continue;
            if (!(s.states & state_bit(state_))) return wrong_state(s.states);
            (this->*s.run)(p, s.arg);
            return;
        }
    }
    static const struct {
        const char* name;
        void (Session::*run)(Parser&, bool);
    } selected[] = {
        {"FETCH", &Session::cmd_fetch},   {"STORE", &Session::cmd_store},   {"SEARCH", &Session::cmd_search},
        {"EXPUNGE", &Session::cmd_expunge}, {"SORT", &Session::cmd_sort}, {"THREAD", &Session::cmd_thread},
    };
    for (const auto& s : selected) {
        if (name != s.name) continue;
        if (state_ != State::Selected) return wrong_state(kSelected);
        (this->*s.run)(p, uid);
        return;
    }
    if (name == "COPY" || name == "MOVE") {
        if (state_ != State::Selected) return wrong_state(kSelected);
        cmd_copy(p, uid, name == "MOVE");
        return;
    }
    tagged("BAD", "", "unknown command " + loggable(name));
}

// ---- any state ----

void Session::cmd_capability(Parser& p) {
    if (!p.end()) return bad_syntax(p);
    untagged("CAPABILITY " + capabilities());
    tagged("OK", "", "CAPABILITY completed");
}

void Session::cmd_noop(Parser& p) {
    if (!p.end()) return bad_syntax(p);
    if (state_ == State::Selected) refresh_and_report();
    tagged("OK", "", "NOOP completed");
}

void Session::cmd_logout(Parser& p) {
    if (!p.end()) return bad_syntax(p);
    untagged("BYE logging out");
    tagged("OK", "", "LOGOUT completed");
    state_ = State::Logout;
    log::info("logout from %s%s%s", peer_.c_str(), user_.empty() ? "" : " user=", user_.c_str());
    close_after_output();
}

void Session::cmd_id(Parser& p) {
    // RFC 2971: ID NIL / ID ("name" "value" ...); at most 30 pairs.
    if (!p.sp()) return bad_syntax(p);
    std::string client;
    if (p.peek('(')) {
        p.take('(');
        for (int n = 0; !p.take(')'); ++n) {
            if (n >= 30) {
                tagged("BAD", "", "ID takes at most 30 field-value pairs");
                return;
            }
            if (n > 0 && !p.sp()) return bad_syntax(p);
            auto field = p.string();
            if (!field || !p.sp()) return bad_syntax(p);
            auto value = p.nstring();
            if (!value) return bad_syntax(p);
            if (field->size() > 30 || (*value && (*value)->size() > 1024)) {
                tagged("BAD", "", "ID field names are at most 30 bytes, values at most 1024");
                return;
            }
            if (n < 6) client += (client.empty() ? "" : ", ") + loggable(*field) + "=" + loggable(value->value_or("NIL"));
        }
    } else {
        auto nil = p.keyword();
        if (!nil || !imap::iequals(*nil, "NIL")) return bad_syntax(p);
    }
    if (!p.end()) return bad_syntax(p);
    if (!client.empty()) log::info("client id from %s: %s", peer_.c_str(), client.c_str());
    untagged("ID (\"name\" \"tern\" \"vendor\" \"tern\")");
    tagged("OK", "", "ID completed");
}

// ---- not authenticated ----

void Session::cmd_starttls(Parser& p) {
    if (!p.end()) return bad_syntax(p);
    if (tls_) {
        tagged("BAD", "", "TLS is already active");
        return;
    }
    if (!server_.tls()) {
        tagged("NO", "", "STARTTLS is not available: this server has no certificate configured");
        return;
    }
    tagged("OK", "", "Begin TLS negotiation now");
    start_tls();
}

void Session::cmd_login(Parser& p) {
    if (!may_authenticate()) {
        tagged("NO", "PRIVACYREQUIRED", "LOGIN is disabled until TLS is active: use STARTTLS first, or port 993");
        return;
    }
    auth::Credentials c;
    auto user = p.sp() ? p.astring() : std::nullopt;
    auto pass = p.sp() ? p.astring() : std::nullopt;
    if (!user || !pass || !p.end()) return bad_syntax(p);
    c.authcid = std::move(*user);
    c.password = std::move(*pass);
    check_credentials("LOGIN", std::move(c));
}

void Session::cmd_authenticate(Parser& p) {
    auto mech = p.sp() ? p.atom() : std::nullopt;
    if (!mech) return bad_syntax(p);
    std::optional<std::string> initial;
    if (p.take(' ')) {
        // SASL-IR (RFC 4959): base64 or "=" for an empty response.
        auto ir = p.atom();
        if (!ir) return bad_syntax(p);
        initial = std::string(*ir);
    }
    if (!p.end()) return bad_syntax(p);
    if (!may_authenticate()) {
        tagged("NO", "PRIVACYREQUIRED", "authentication is disabled until TLS is active: use STARTTLS first");
        return;
    }
    if (!auth::SaslExchange::supported(*mech)) {
        tagged("NO", "CANNOT", "unsupported mechanism " + loggable(*mech) + "; this server offers PLAIN and LOGIN");
        return;
    }
    sasl_ = std::make_unique<auth::SaslExchange>();
    auto step = sasl_->start(*mech, initial ? std::optional<std::string_view>(*initial) : std::nullopt);
    input_ = Input::Sasl;
    sasl_step(step);
}

void Session::sasl_step(const auth::SaslStep& s) {
    switch (s.state) {
    case auth::SaslState::challenge:
        send("+ " + s.challenge + "\r\n");
        reader_.expect_raw_line();
        return;
    case auth::SaslState::done: {
        input_ = Input::Commands;
        std::string mechanism = sasl_->mechanism();
        auth::Credentials creds = sasl_->credentials();
        sasl_.reset();
        check_credentials(mechanism, std::move(creds));
        return;
    }
    case auth::SaslState::failed:
        input_ = Input::Commands;
        sasl_.reset();
        tagged("BAD", "", "AUTHENTICATE: " + s.error);
        return;
    case auth::SaslState::cancelled:
        // RFC 9051 6.2.2: a cancelled exchange is answered with BAD.
        input_ = Input::Commands;
        sasl_.reset();
        tagged("BAD", "", "AUTHENTICATE cancelled");
        return;
    }
}

void Session::sasl_line(std::string_view line) {
    if (sasl_) sasl_step(sasl_->next(line));
}

void Session::check_credentials(std::string mechanism, auth::Credentials credentials) {
    auth::Request req;
    req.mechanism = std::move(mechanism);
    req.credentials = std::move(credentials);
    req.client_ip = addr_;
    req.service = "imap";
    req.secured = tls_ || loopback_;
    std::string login = loggable(req.credentials.authcid);
    input_ = Input::Waiting;
    if (bev_) bufferevent_disable(bev_, EV_READ);
    ticket_ = server_.auth().check(req, [this, login](const auth::Answer& a) {
        ticket_ = 0;
        if (a.outcome == auth::Outcome::ok && a.system_user) {
            serve_system_user(a);  // reading resumes in the backend, or after its NO
            return;
        }
        if (a.outcome == auth::Outcome::ok) {
            logged_in(a);
        } else if (a.outcome == auth::Outcome::tempfail) {
            log::warning("login of %s from %s: temporary failure: %s", login.c_str(), peer_.c_str(),
                         loggable(a.reason).c_str());
            tagged("NO", "UNAVAILABLE", "authentication is temporarily unavailable, try again later");
        } else {
            tagged("NO", "AUTHENTICATIONFAILED", "authentication failed");
            if (++auth_failures_ >= kMaxAuthFailures) {
                bye_and_close("too many failed logins");
                return;
            }
        }
        resume();
    });
}

void Session::logged_in(const auth::Answer& a) {
    if (!open_store(a.user, a.mail, a.quota)) return;
    user_ = a.user;
    state_ = State::Authenticated;
    update_timeout();
    log::info("login: user=<%s>, rip=%s, tls=%s", loggable(user_).c_str(), addr_.c_str(), tls_ ? "yes" : "no");
    tagged("OK", "CAPABILITY " + capabilities(), "logged in");
}

bool Session::open_store(const std::string& user, const std::string& mail, uint64_t quota) {
    mailstore::MaildirOptions options;
    options.root = mail;
    options.quota_bytes = quota;
    auto store = mailstore::open_maildir_store(options);
    if (!store) {
        log::warning("login of %s from %s: cannot open the mail store %s: %s", loggable(user).c_str(),
                     peer_.c_str(), mail.c_str(), store.message().c_str());
        tagged("NO", "UNAVAILABLE", "your mailbox is unavailable, try again later");
        return false;
    }
    store_ = std::move(*store);
    quota_ = quota;
    if (Status s = store_->create_default_folders(); !s)
        log::warning("user %s: creating the default folders: %s", loggable(user).c_str(), s.message().c_str());
    return true;
}

void Session::cmd_enable(Parser& p) {
    // RFC 5161; IMAP4rev2 (RFC 9051 6.3.1), CONDSTORE/QRESYNC (RFC 7162),
    // UTF8=ACCEPT (RFC 6855).  Unknown capabilities are ignored.
    if (!p.sp()) return bad_syntax(p);
    std::string enabled;
    while (true) {
        auto cap = p.atom();
        if (!cap) return bad_syntax(p);
        std::string c = imap::upper(*cap);
        bool* flag = nullptr;
        if (c == "IMAP4REV2") flag = &rev2_;
        else if (c == "CONDSTORE") flag = &condstore_;
        else if (c == "QRESYNC") flag = &qresync_;
        else if (c == "UTF8=ACCEPT") flag = &utf8_;
        if (flag && !*flag) {
            *flag = true;
            enabled += " " + std::string(*cap);
        }
        if (c == "QRESYNC") condstore_ = true;  // QRESYNC implies CONDSTORE
        if (p.at_end()) break;
        if (!p.sp()) return bad_syntax(p);
    }
    untagged("ENABLED" + enabled);
    tagged("OK", "", "ENABLE completed");
}

}  // namespace tern::imapd
