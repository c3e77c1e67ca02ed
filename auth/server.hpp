// The auth service socket: accepts connections from smtpd, imapd, pop3d and
// mailctl (peers identified by SO_PEERCRED, only auth_peer_users), reads
// "auth-check" requests (lib/auth/client.hpp has the wire format), and
// answers each by id once its check is done.
//
// Order of a check: service allowed? → throttled? (refused without a
// password check) → password check on the HashPool → throttle bookkeeping,
// one log line, the failure delay (a timer, never a sleep) → answer.
//
// Log lines (stable; conf/fail2ban/tern-auth.conf matches the first):
//   authentication failed: user=<x>, rip=1.2.3.4, service=imap, reason=...
//   authenticated: user=<x>, rip=1.2.3.4, service=imap, mechanism=PLAIN
//   blocked: user=<x>, rip=1.2.3.4, service=imap, reason=client address blocked for 900s
//   login ticket refused: service=imap, requester=uid 1001, reason=...
//
// A system user's successful imap/pop3 check also carries a one-time login
// ticket (login_tickets.hpp); "ticket-redeem" (only from a root peer: the
// user-session service) trades it for the account:
//   request  type=ticket-redeem id ticket service requester
//   answer   type=ticket-answer id outcome=ok|fail user uid gid home mail
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "auth/hash_pool.hpp"
#include "auth/login_tickets.hpp"
#include "auth/passdb.hpp"
#include "auth/settings.hpp"
#include "auth/throttle.hpp"
#include "lib/event/loop.hpp"
#include "lib/ipc/request_server.hpp"

namespace tern::authd {

class Server {
public:
    Server(event_base* base, std::vector<Fd> listeners, Settings settings);
    void close_listeners() { requests_.close_listeners(); }
    void reload_users() { passdb_.refresh(true); }
    size_t connections() const { return requests_.size(); }
    size_t checks_in_flight() const { return in_flight_; }

private:
    void on_message(uint64_t conn, ipc::Message& m);
    void check(uint64_t conn, ipc::Message& m);
    void redeem(uint64_t conn, ipc::Message& m);
    void answer_later(uint64_t conn, int64_t id, auth::Answer answer, std::chrono::milliseconds delay);
    void send_answer(uint64_t conn, int64_t id, const auth::Answer& answer);

    event_base* base_;
    std::shared_ptr<const Settings> settings_;
    PasswordDb passdb_;
    Throttle throttle_;
    LoginTickets tickets_;
    HashPool pool_;
    std::string dummy_hash_;
    ipc::RequestServer<> requests_;
    // Delayed answers: each owns its timer until it fires.
    std::map<uint64_t, event::Watch> delayed_;
    uint64_t next_delay_ = 1;
    size_t in_flight_ = 0;
};

}  // namespace tern::authd
