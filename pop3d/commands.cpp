// POP3 command handlers: RFC 1939 (STAT, LIST, RETR, DELE, NOOP, RSET,
// QUIT, TOP, UIDL, USER, PASS), RFC 2449 (CAPA, response codes), RFC 2595
// (STLS).  Login itself is in login.cpp.
#include <event2/bufferevent.h>

#include "lib/log/log.hpp"
#include "pop3d/server.hpp"
#include "pop3d/session.hpp"

namespace tern::pop3d {

using pop3::Verb;

void Session::dispatch(std::string_view line) {
    auto cmd = pop3::parse_command(line);
    if (!cmd) return error("", cmd.message());
    if (auto bad = pop3::check_arguments(*cmd)) {
        if (cmd->verb == Verb::Unknown) return error("", "unknown command: " + cmd->keyword);
        return error("", *bad);
    }
    switch (cmd->verb) {
    case Verb::Capa: return cmd_capa();
    case Verb::Quit: return cmd_quit();
    case Verb::Stls: return cmd_stls();
    case Verb::User:
    case Verb::Pass:
    case Verb::Auth:
    case Verb::Apop:
        if (state_ == State::Transaction) return error("", "already logged in");
        if (cmd->verb == Verb::User) return cmd_user(*cmd);
        if (cmd->verb == Verb::Pass) return cmd_pass(*cmd);
        if (cmd->verb == Verb::Auth) return cmd_auth(*cmd);
        return error("", "APOP is not offered: use USER/PASS or AUTH PLAIN (over TLS)");
    default:
        if (state_ == State::Authorization) return error("", "log in first (USER and PASS, or AUTH)");
        return transaction(*cmd);
    }
}

// RFC 2449 5.  What depends on the state is listed only where it applies.
void Session::cmd_capa() {
    std::string out = pop3::ok("capability list follows");
    out += "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n";
    if (state_ == State::Authorization) {
        if (may_login()) {
            out += "USER\r\nSASL ";
            out += auth::SaslExchange::mechanisms();
            out += "\r\n";
        }
        if (server_.tls() && !tls_) out += "STLS\r\n";
    }
    out += "IMPLEMENTATION tern\r\n.\r\n";
    send(out);
}

void Session::cmd_stls() {
    if (state_ != State::Authorization) return error("", "STLS is only allowed before login");
    if (tls_) return error("", "TLS is already active");
    if (!server_.tls()) return error("", "STLS is not available: the server has no certificate");
    send(pop3::ok("begin TLS negotiation"));
    start_tls();
}

void Session::cmd_quit() {
    quit_ = true;
    if (state_ == State::Transaction && maildrop_) {
        // RFC 1939 6: the UPDATE state.
        size_t marked = maildrop_->marked();
        std::string answer;
        auto r = maildrop_->update();
        if (!r) {
            log::warning("user=<%s>: removing %zu messages at QUIT failed: %s", user_.c_str(), marked,
                         r.message().c_str());
            answer = pop3::err("SYS/TEMP", "deleted messages could not be removed, they are still there");
        } else {
            log::info("update: user=<%s>, deleted=%zu, already gone=%zu", user_.c_str(), r->deleted, r->gone);
            answer = pop3::ok("logging out, " + std::to_string(r->deleted) + " messages deleted");
        }
        // Done with the mailbox: a client that reconnects as soon as it
        // reads the answer must not find it locked.
        maildrop_.reset();
        store_.reset();
        lock_ = Fd();
        send(answer);
    } else {
        send(pop3::ok("logging out"));
    }
    close_after_reply();
}

std::optional<uint32_t> Session::message_argument(std::string_view arg) {
    auto n = pop3::message_number(arg);
    if (!n) error("", "invalid message number: " + std::string(arg));
    return n;
}

void Session::transaction(const pop3::Command& cmd) {
    pop3::Maildrop& drop = *maildrop_;
    switch (cmd.verb) {
    case Verb::Stat: {
        auto t = drop.totals();
        send(pop3::ok(std::to_string(t.messages) + " " + std::to_string(t.octets)));
        return;
    }
    case Verb::List: return cmd_list(cmd, false);
    case Verb::Uidl: return cmd_list(cmd, true);
    case Verb::Retr: return cmd_retr(cmd, false);
    case Verb::Top: return cmd_retr(cmd, true);
    case Verb::Dele: {
        auto n = message_argument(cmd.args[0]);
        if (!n) return;
        if (Status s = drop.mark_deleted(*n); !s) return error("", s.message());
        send(pop3::ok("message " + std::to_string(*n) + " deleted"));
        return;
    }
    case Verb::Noop: send(pop3::ok("")); return;
    case Verb::Rset: {
        drop.reset();
        auto t = drop.totals();
        send(pop3::ok("maildrop has " + std::to_string(t.messages) + " messages (" + std::to_string(t.octets) +
                      " octets)"));
        return;
    }
    default: return error("", "unknown command: " + cmd.keyword);
    }
}

// LIST and UIDL (RFC 1939 5, 7): one message, or every one not deleted.
void Session::cmd_list(const pop3::Command& cmd, bool uidl) {
    pop3::Maildrop& drop = *maildrop_;
    auto value = [&](uint32_t n) {
        const auto& m = drop.at(n);
        return std::to_string(n) + " " + (uidl ? m.unique_id : std::to_string(m.octets));
    };
    if (!cmd.args.empty()) {
        auto n = message_argument(cmd.args[0]);
        if (!n) return;
        auto m = drop.find(*n);
        if (!m) return error("", m.message());
        send(pop3::ok(value(*n)));
        return;
    }
    auto t = drop.totals();
    std::string out = uidl ? pop3::ok("unique-id listing follows")
                           : pop3::ok(std::to_string(t.messages) + " messages (" + std::to_string(t.octets) + " octets)");
    for (uint32_t n = 1; n <= drop.count(); ++n) {
        if (drop.at(n).deleted) continue;
        out += value(n);
        out += "\r\n";
    }
    out += ".\r\n";
    send(out);
}

// RETR and TOP: the answer line, then the message streamed by pump_message().
void Session::cmd_retr(const pop3::Command& cmd, bool top) {
    pop3::Maildrop& drop = *maildrop_;
    auto n = message_argument(cmd.args[0]);
    if (!n) return;
    std::optional<uint32_t> lines;
    if (top) {
        lines = pop3::line_count(cmd.args[1]);
        if (!lines) return error("", "invalid line count: " + std::string(cmd.args[1]));
    }
    auto m = drop.find(*n);
    if (!m) return error("", m.message());
    uint64_t octets = (*m)->octets;
    auto body = drop.open(*n);
    if (!body) {
        // Expunged by an IMAP client since the snapshot was taken, or the
        // store failed: either way this session cannot send it.
        log::info("user=<%s>: message %u (uid %u) cannot be read: %s", user_.c_str(), *n, (*m)->uid,
                  body.message().c_str());
        return error("", "message " + std::to_string(*n) + " is no longer available");
    }
    if (top) {
        ++top_count_;
        send(pop3::ok("top of message follows"));
    } else {
        ++retr_count_;
        retr_bytes_ += octets;
        drop.mark_retrieved(*n);
        send(pop3::ok(std::to_string(octets) + " octets"));
    }
    body_ = std::move(*body);
    encoder_.emplace(lines);
    body_offset_ = 0;
    input_ = Input::Sending;
    bufferevent_disable(bev_, EV_READ);
    pump_message();
}

}  // namespace tern::pop3d
