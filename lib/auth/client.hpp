// Client side of the auth daemon, for event-driven servers (smtpd, imapd,
// pop3d): ask whether a login is good without ever seeing password data.
//
//   auth::Client auth(base, config.get("auth_socket"));
//   auto ticket = auth.check(request, [this](const auth::Answer& a) { ... });
//   ...
//   auth.cancel(ticket);   // the session went away before the answer came
//
// One UNIX-socket connection to the daemon (lib/ipc frames), opened on
// first use and re-opened after it breaks; many checks may be in flight on
// it at once, each answered by id, in any order (the daemon hashes on a
// thread pool, so a slow yescrypt check never holds up the others).  The
// callback runs from the event loop, exactly once per check that was not
// cancelled: with Outcome::ok, fail (wrong user or password, or throttled),
// or tempfail (daemon unreachable, timed out, internal error) — a server
// answers a tempfail with a temporary error (SMTP 454 4.7.0, IMAP
// NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]), never with "bad password".
//
// Stable interface: imapd and pop3d build against it.  Changes are named in
// the commit message that makes them.
//
// Wire protocol (for the record; only this module and auth/ speak it):
//   request  type=auth-check id mechanism authzid user password rip service secured
//   answer   type=auth-answer id outcome=ok|fail|tempfail user system uid gid
//            home mail quota ticket reason
//   (ticket: a system user's one-time login ticket, auth/login_tickets.hpp)
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "lib/auth/sasl.hpp"

struct event_base;

namespace tern::auth {

enum class Outcome { ok, fail, tempfail };

const char* outcome_name(Outcome o);  // "ok", "fail", "tempfail"

// What a server asks: the decoded SASL credentials plus where they came from.
struct Request {
    std::string mechanism;     // "PLAIN", "LOGIN" (logged, and checked against the config)
    Credentials credentials;   // authzid (may be empty), authcid, password
    std::string client_ip;     // "192.0.2.1" / "2001:db8::1"; the throttling key
    std::string service;       // "smtp", "imap", "pop3": must be in auth_services
    bool secured = false;      // TLS or loopback: some configs refuse plaintext
};

// The daemon's answer.  On ok the account fields are filled; on fail or
// tempfail only reason is (a short text for the server's log, never
// shown to the client as is: it may say "unknown user").
struct Answer {
    Outcome outcome = Outcome::tempfail;
    std::string user;          // canonical login: "alice@example.org" or the system login "bob"
    bool system_user = false;  // from the system password database (mail under the user's uid)
    std::optional<uid_t> uid;  // virtual users: empty unless the users file gives one (vmail_user then)
    std::optional<gid_t> gid;
    std::string home;          // may be empty for virtual users
    std::string mail;          // the Maildir to serve: "/var/vmail/example.org/alice" or "/home/bob/Maildir"
    uint64_t quota = 0;        // the Maildir++ quota local-delivery enforces, bytes; 0 = none
    std::string login_ticket;  // system users over imap/pop3: what user-session redeems
    std::string reason;
    std::chrono::milliseconds delay{0};  // throttling delay the daemon already waited (for logs)
};

class Client {
public:
    using Callback = std::function<void(const Answer&)>;
    using Ticket = uint64_t;  // 0 is never a valid ticket

    // socket_path: the auth service's UNIX socket (config key auth_socket).
    // timeout: a check not answered within it gets a tempfail.
    Client(event_base* base, std::string socket_path,
           std::chrono::milliseconds timeout = std::chrono::seconds(30));
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Starts a check; the callback runs later from the loop (never from
    // inside check()).  Returns a ticket for cancel().
    Ticket check(const Request& request, Callback callback);
    // Forgets a check: its callback will not run.  Unknown tickets are ignored.
    void cancel(Ticket ticket);
    // Checks in flight (for tests and draining).
    size_t pending() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace tern::auth
