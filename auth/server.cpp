// The auth service socket: see server.hpp.
#include "auth/server.hpp"

#include <cctype>

#include "lib/log/log.hpp"

namespace tern::authd {
namespace {

constexpr uint32_t kMaxRequest = 16 * 1024;  // a few names and a password

// A user-supplied name made safe for one log line: no control bytes, no
// '>' (it would end the <...>), at most 128 bytes.
std::string loggable(std::string_view s) {
    std::string out;
    for (unsigned char c : s.substr(0, 128)) out += (c < 0x20 || c == 0x7f || c == '>' || c == '<') ? '?' : char(c);
    if (s.size() > 128) out += "...";
    return out;
}

std::string loggable_ip(std::string_view ip) {
    if (ip.empty()) return "unknown";
    for (unsigned char c : ip)
        if (!(std::isxdigit(c) || c == '.' || c == ':')) return "invalid";
    return std::string(ip.substr(0, 64));
}

}  // namespace

Server::Server(event_base* base, std::vector<Fd> listeners, Settings settings)
    : base_(base),
      settings_(std::make_shared<const Settings>(std::move(settings))),
      passdb_(settings_->users_file, settings_->password_file),
      throttle_(settings_->throttle),
      pool_(base, settings_->threads),
      dummy_hash_(make_dummy_hash()),
      requests_(base, std::move(listeners), ipc::PeerPolicy{"auth socket", "auth_peer_users", settings_->peer_uids},
                kMaxRequest, [this](uint64_t conn, ipc::Message& m) { on_message(conn, m); }) {
    passdb_.refresh(true);
}

void Server::on_message(uint64_t conn, ipc::Message& m) {
    if (m.type() == "auth-check") {
        check(conn, m);
        return;
    }
    if (m.type() == "ticket-redeem") {
        redeem(conn, m);
        return;
    }
    log::warning("unexpected \"%s\" message from pid %d; closing the connection", loggable(m.type()).c_str(),
                 int(requests_[conn].pid));
    requests_.drop(conn);
}

void Server::check(uint64_t conn, ipc::Message& m) {
    auto id = m.get_int("id");
    if (!id || *id <= 0) {
        log::warning("auth request without an id from pid %d; closing the connection", int(requests_[conn].pid));
        requests_.drop(conn);
        return;
    }
    std::string service = m.get_or("service", "");
    std::string login = m.get_or("user", "");
    std::string password = m.get_or("password", "");
    std::string authzid = m.get_or("authzid", "");
    std::string rip = m.get_or("rip", "");
    std::string mechanism = m.get_or("mechanism", "");
    std::string user_key = canonical_login(login);
    auto log_failure = [&](const std::string& reason) {
        log::info("authentication failed: user=<%s>, rip=%s, service=%s, reason=%s", loggable(login).c_str(),
                  loggable_ip(rip).c_str(), loggable(service).c_str(), loggable(reason).c_str());
    };
    auth::Answer refused;
    refused.outcome = auth::Outcome::fail;
    if (!settings_->services.count(service)) {
        refused.reason = "service '" + loggable(service) + "' is not in auth_services";
        log_failure(refused.reason);
        send_answer(conn, *id, refused);
        return;
    }
    if (!authzid.empty() && canonical_login(authzid) != user_key) {
        // Logging in as someone else (a master user) is not offered.
        refused.reason = "authorization identity differs from the login";
        log_failure(refused.reason);
        send_answer(conn, *id, refused);
        return;
    }
    auto now = Throttle::Clock::now();
    if (auto why = throttle_.blocked(rip, user_key, now)) {
        refused.reason = *why;
        log_failure(refused.reason);
        answer_later(conn, *id, refused, throttle_.block_delay());
        return;
    }
    passdb_.refresh();
    auto users = passdb_.snapshot();
    auto settings = settings_;
    auto result = std::make_shared<CheckResult>();
    ++in_flight_;
    int64_t request_id = *id;
    pool_.submit(
        [users, settings, login, password, result, dummy = dummy_hash_] {
            *result = check_login(*users, *settings, login, password, dummy);
        },
        [this, conn, request_id, result, rip, login, user_key, service, mechanism] {
            --in_flight_;
            auth::Answer& a = result->answer;
            if (a.outcome == auth::Outcome::ok) {
                throttle_.succeeded(rip, user_key);
                // A system user is served by a process under the user's own
                // uid, which user-session starts on this ticket (login_tickets.hpp).
                auto* c = requests_.find(conn);
                if (a.system_user && (service == "imap" || service == "pop3") && c)
                    a.login_ticket = tickets_.issue(a, service, c->uid, LoginTickets::Clock::now());
                log::info("authenticated: user=<%s>, rip=%s, service=%s, mechanism=%s", loggable(a.user).c_str(),
                          loggable_ip(rip).c_str(), loggable(service).c_str(), loggable(mechanism).c_str());
                send_answer(conn, request_id, a);
                return;
            }
            log::info("authentication failed: user=<%s>, rip=%s, service=%s, reason=%s", loggable(login).c_str(),
                      loggable_ip(rip).c_str(), loggable(service).c_str(), loggable(a.reason).c_str());
            if (a.outcome == auth::Outcome::tempfail) {
                send_answer(conn, request_id, a);
                return;
            }
            auto after = throttle_.failed(rip, user_key, Throttle::Clock::now());
            if (!after.new_block.empty()) {
                auto secs = static_cast<long long>(settings_->throttle.block_time.count());
                log::warning("blocked: user=<%s>, rip=%s, service=%s, reason=%s for %llds", loggable(login).c_str(),
                             loggable_ip(rip).c_str(), loggable(service).c_str(), after.new_block.c_str(), secs);
            }
            answer_later(conn, request_id, a, after.delay);
        });
    // Wipe our copy of the password; the job holds its own until it ran.
    std::fill(password.begin(), password.end(), '\0');
}

void Server::redeem(uint64_t conn, ipc::Message& m) {
    auto id = m.get_int("id");
    auto requester = m.get_int("requester");
    const auto& c = requests_[conn];
    if (!id || *id <= 0 || !requester || *requester < 0) {
        log::warning("ticket request without an id or requester from pid %d; closing the connection", int(c.pid));
        requests_.drop(conn);
        return;
    }
    std::string service = m.get_or("service", "");
    ipc::Message out("ticket-answer");
    out.add_int("id", *id);
    std::optional<auth::Answer> a;
    std::string reason;
    // Only root may become a user, so only root has a use for a ticket.
    if (c.uid != 0) reason = "peer uid " + std::to_string(c.uid) + " is not root";
    else if (!(a = tickets_.redeem(m.get_or("ticket", ""), service, static_cast<uid_t>(*requester),
                                  LoginTickets::Clock::now())))
        reason = "unknown, expired or already used ticket";
    if (a && a->uid && a->gid) {
        out.add("outcome", "ok");
        out.add("user", a->user);
        out.add_int("uid", *a->uid);
        out.add_int("gid", *a->gid);
        out.add("home", a->home);
        out.add("mail", a->mail);
    } else {
        if (reason.empty()) reason = "ticket without uid/gid";
        log::warning("login ticket refused: service=%s, requester=uid %lld, reason=%s", loggable(service).c_str(),
                     static_cast<long long>(*requester), reason.c_str());
        out.add("outcome", "fail");
        out.add("reason", reason);
    }
    c.channel->send(out);
}

void Server::answer_later(uint64_t conn, int64_t id, auth::Answer answer, std::chrono::milliseconds delay) {
    answer.delay = delay;
    if (delay.count() <= 0) {
        send_answer(conn, id, answer);
        return;
    }
    uint64_t key = next_delay_++;
    auto shared = std::make_shared<auth::Answer>(std::move(answer));
    delayed_[key] = event::timer(base_, [this, key, conn, id, shared](short) {
        send_answer(conn, id, *shared);
        delayed_.erase(key);  // destroys this callback: nothing after it
    });
    delayed_[key].add(delay);
}

void Server::send_answer(uint64_t conn, int64_t id, const auth::Answer& a) {
    auto* c = requests_.find(conn);
    if (!c || !c->channel || c->channel->closed()) return;
    ipc::Message m("auth-answer");
    m.add_int("id", id);
    m.add("outcome", auth::outcome_name(a.outcome));
    if (a.outcome == auth::Outcome::ok) {
        m.add("user", a.user);
        m.add("system", a.system_user ? "1" : "0");
        if (a.uid) m.add_int("uid", *a.uid);
        if (a.gid) m.add_int("gid", *a.gid);
        m.add("home", a.home);
        m.add("mail", a.mail);
        if (a.quota) m.add_int("quota", static_cast<int64_t>(a.quota));
        if (!a.login_ticket.empty()) m.add("ticket", a.login_ticket);
    }
    m.add("reason", a.reason);
    m.add_int("delay", a.delay.count());
    c->channel->send(m);
}

}  // namespace tern::authd
