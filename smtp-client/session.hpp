// One SMTP client session with one remote server (RFC 5321): connect,
// greeting, EHLO (HELO fallback), STARTTLS (RFC 3207) per the TLS level,
// then any number of mail transactions, RSET between them, QUIT at the end.
//
// A transaction sends MAIL with SIZE/BODY/SMTPUTF8/RET/ENVID as the server
// supports them, one RCPT per recipient (NOTIFY/ORCPT with DSN), DATA and
// the body streamed from the queue file (CRLF, dot-stuffed; an 8-bit body
// re-encoded as quoted-printable when the server lacks 8BITMIME).  With
// PIPELINING (RFC 2920) MAIL, every RCPT and DATA go out in one write.
//
// Every recipient gets a result from the server's own reply; only when the
// connection breaks does a recipient stay unfinished, and the caller then
// tries it at the next server.  Callbacks run from the event loop; the owner
// must not free a Session inside one of its callbacks.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "lib/delivery/request.hpp"
#include "lib/dns/message.hpp"
#include "lib/event/loop.hpp"
#include "lib/smtp/client_reply.hpp"
#include "smtp-client/settings.hpp"

namespace tern::smtpc {

struct Target {
    std::string host;  // "mx.example.org"
    std::string ip;    // "192.0.2.1", "2001:db8::1"
    int port = 25;
    TlsLevel level = TlsLevel::May;
    std::vector<dns::Record> tlsa;  // level Dane: usable DANE-TA/DANE-EE records (RFC 7672 3.1)
    std::string tlsa_error;         // level Dane: why there are none (lookup failure)
    std::string label() const;  // "mx.example.org[192.0.2.1]:25"
};

struct OpenResult {
    bool ok = false;
    bool reached = false;  // the TCP connection was made (not a dead host)
    delivery::Outcome outcome = delivery::Outcome::Deferred;  // when not ok
    std::string dsn, text;
};

struct TransactionResult {
    std::vector<delivery::RecipientResult> results;  // recipients the server answered for
    std::string error;  // why the others are unfinished (connection lost, 421)
    double transfer_seconds = 0;
};

class Session {
public:
    Session(event_base* base, const Settings& settings, Target target, std::optional<std::pair<std::string, std::string>> auth);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    void open(std::function<void(OpenResult)> done);
    void send(const delivery::Request& request, std::vector<const delivery::RequestRecipient*> recipients,
              std::function<void(TransactionResult)> done);
    void quit(std::function<void()> closed);  // QUIT, then closed() once the server answered or gave up

    const Target& target() const { return target_; }
    bool broken() const { return broken_; }
    bool idle() const { return !busy_; }
    int transactions() const { return transactions_; }
    const smtp::Extensions& extensions() const { return ext_; }

private:
    using Handler = std::function<void(const smtp::Reply&)>;
    struct Pending {
        std::string line;
        Handler handler;
    };

    void on_read();
    void on_event(short what);
    void on_write();
    void fail(const std::string& why);
    void later(std::function<void()> fn);
    void command(std::string line, Handler handler);  // queued, sent by flush()
    void flush();
    void arm_timer(std::chrono::milliseconds timeout);
    void expect(Handler handler, std::chrono::milliseconds timeout);
    void after_greeting(const smtp::Reply& r);
    void send_ehlo();
    void after_ehlo(const smtp::Reply& r);
    void start_tls();
    void tls_established();
    void authenticate();
    void opened();
    void open_failed(delivery::Outcome outcome, std::string dsn, std::string text);
    std::string said(const smtp::Reply& r, std::string_view in_reply_to) const;
    void begin_transaction();
    void send_body();
    void pump_body();
    void on_final(const smtp::Reply& r);
    void finish_transaction();

    event_base* base_;
    const Settings& settings_;
    Target target_;
    TlsLevel level_;
    std::optional<std::pair<std::string, std::string>> auth_;  // user, password
    event::BufferEvent bev_;
    event::Watch timer_;
    event::Watch later_;
    std::vector<std::function<void()>> later_calls_;
    std::string phase_;  // "receiving the initial server greeting", for error texts
    smtp::ReplyReader reader_;
    smtp::Extensions ext_;
    std::deque<Handler> expect_;
    std::deque<Pending> queue_;
    std::function<void(const std::string&)> on_broken_;
    std::function<void(OpenResult)> on_open_;
    bool broken_ = false, busy_ = false, tls_ = false, helo_ = false, connecting_ = false, handshaking_ = false;
    int transactions_ = 0;

    // The transaction in progress.
    struct Tx;
    std::unique_ptr<Tx> tx_;
};

}  // namespace tern::smtpc
