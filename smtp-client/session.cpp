// The SMTP client session (see session.hpp).
#include "smtp-client/session.hpp"

#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "lib/log/log.hpp"
#include "lib/net/address.hpp"
#include "lib/smtp/command.hpp"
#include "lib/smtp/outbound.hpp"
#include "lib/sys/clock.hpp"
#include "lib/tls/context.hpp"

namespace tern::smtpc {

namespace {

constexpr size_t kMaxLine = 8192;
constexpr size_t kBodyChunk = 64 * 1024;
constexpr size_t kOutputHigh = 256 * 1024;

double now() { return static_cast<double>(sys::monotonic_ms()) / 1000.0; }

std::string notify_words(uint8_t bits) {
    if (bits & 8) return "NEVER";
    std::string out;
    auto add = [&](const char* w) { out += out.empty() ? w : std::string(",") + w; };
    if (bits & 1) add("SUCCESS");
    if (bits & 2) add("FAILURE");
    if (bits & 4) add("DELAY");
    return out;
}

// "rfc822;user@example.org" → "rfc822;" + xtext(address) (RFC 3461 4.2).
std::string orcpt_param(const std::string& orcpt) {
    size_t semi = orcpt.find(';');
    if (semi == std::string::npos) return {};
    return orcpt.substr(0, semi + 1) + smtp::xtext_encode(orcpt.substr(semi + 1));
}

}  // namespace

std::string Target::label() const { return host + "[" + ip + "]:" + std::to_string(port); }

struct Session::Tx {
    const delivery::Request* request = nullptr;
    std::vector<const delivery::RequestRecipient*> recipients;
    std::function<void(TransactionResult)> done;
    TransactionResult result;
    std::set<uint32_t> answered;
    std::vector<const delivery::RequestRecipient*> accepted;
    bool mail_ok = false;
    bool converted = false;
    std::string body;  // the converted message, when converted
    off_t offset = 0;
    smtp::DataEncoder encoder;
    bool sending_body = false;
    double start = 0;
};

Session::Session(event_base* base, const Settings& settings, Target target,
                 std::optional<std::pair<std::string, std::string>> auth)
    : base_(base), settings_(settings), target_(std::move(target)), level_(target_.level), auth_(std::move(auth)) {
    timer_ = event::timer(base_, [this](short) { fail("timeout while " + phase_); });
    later_ = event::timer(base_, [this](short) {
        std::vector<std::function<void()>> calls;
        calls.swap(later_calls_);
        for (auto& c : calls) c();
    });
}

Session::~Session() = default;

void Session::later(std::function<void()> fn) {
    later_calls_.push_back(std::move(fn));
    later_.activate();
}

void Session::open(std::function<void(OpenResult)> done) {
    on_open_ = std::move(done);
    busy_ = true;
    connecting_ = true;
    phase_ = "connecting";
    on_broken_ = [this](const std::string& why) {
        bool connecting = connecting_;
        open_failed(delivery::Outcome::Deferred, "4.4.1",
                    connecting ? "connect to " + target_.label() + ": " + why
                               : "lost connection with " + target_.host + "[" + target_.ip + "] while " + phase_ +
                                     (why.empty() ? "" : " (" + why + ")"));
    };
    auto addr = net::parse_ip(target_.ip, target_.port);
    if (!addr) {
        later([this] { fail("bad address"); });
        return;
    }
    bev_.reset(bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS));
    bufferevent_setcb(
        bev_.get(), [](bufferevent*, void* self) { static_cast<Session*>(self)->on_read(); },
        [](bufferevent*, void* self) { static_cast<Session*>(self)->on_write(); },
        [](bufferevent*, short what, void* self) { static_cast<Session*>(self)->on_event(what); }, this);
    bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
    connecting_ = true;
    socklen_t len = addr->ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    arm_timer(settings_.connect_timeout);
    if (bufferevent_socket_connect(bev_.get(), reinterpret_cast<sockaddr*>(&*addr), static_cast<int>(len)) != 0) {
        std::string why = std::strerror(errno);
        later([this, why] { fail(why); });
    }
}

void Session::arm_timer(std::chrono::milliseconds timeout) {
    timer_.del();
    timer_.add(timeout);
}

void Session::expect(Handler handler, std::chrono::milliseconds timeout) {
    expect_.push_back(std::move(handler));
    arm_timer(timeout);
}

void Session::on_event(short what) {
    if (broken_) return;
    if (what & BEV_EVENT_CONNECTED) {
        if (connecting_) {
            connecting_ = false;
            phase_ = "receiving the initial server greeting";
            expect([this](const smtp::Reply& r) { after_greeting(r); }, settings_.reply_timeout);
        } else if (handshaking_) {
            handshaking_ = false;
            tls_established();
        }
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        std::string why;
        if (what & BEV_EVENT_ERROR) {
            why = tls_ || handshaking_ ? tls::bufferevent_errors(bev_.get()) : "";
            if (why.empty()) why = evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
        }
        if (handshaking_) why = "TLS handshake failed" + (why.empty() ? "" : ": " + why);
        fail(why);
    }
}

void Session::fail(const std::string& why) {
    if (broken_) return;
    broken_ = true;
    timer_.del();
    expect_.clear();
    queue_.clear();
    if (bev_) bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
    auto cb = std::move(on_broken_);
    on_broken_ = nullptr;
    if (cb) cb(why);
}

void Session::on_read() {
    evbuffer* in = bufferevent_get_input(bev_.get());
    while (!broken_) {
        size_t n = 0;
        char* line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
        if (!line) {
            if (evbuffer_get_length(in) > kMaxLine) fail("reply line too long");
            return;
        }
        std::string text(line, n);
        std::free(line);
        if (text.size() > kMaxLine) {
            fail("reply line too long");
            return;
        }
        auto reply = reader_.feed(text);
        if (!reply) {
            fail("protocol error: " + reply.message());
            return;
        }
        if (!*reply) continue;
        if (expect_.empty()) {
            fail("unexpected reply: " + (*reply)->text());
            return;
        }
        Handler h = std::move(expect_.front());
        expect_.pop_front();
        if (expect_.empty()) timer_.del();
        else arm_timer(settings_.reply_timeout);
        const smtp::Reply& r = **reply;
        h(r);
        if (r.code == 421 && !broken_) {
            // The server is closing the session (RFC 5321 3.8).
            fail("server closed the session: " + r.text());
            return;
        }
        flush();
    }
}

void Session::on_write() {
    if (tx_ && tx_->sending_body && !broken_) pump_body();
}

void Session::command(std::string line, Handler handler) {
    queue_.push_back({std::move(line), std::move(handler)});
}

void Session::flush() {
    if (broken_ || !bev_) return;
    bool pipeline = ext_.pipelining && tx_;
    std::string out;
    while (!queue_.empty() && (pipeline || (expect_.empty() && out.empty()))) {
        out += queue_.front().line;
        out += "\r\n";
        expect_.push_back(std::move(queue_.front().handler));
        queue_.pop_front();
    }
    if (out.empty()) return;
    bufferevent_write(bev_.get(), out.data(), out.size());
    arm_timer(settings_.reply_timeout);
}

std::string Session::said(const smtp::Reply& r, std::string_view in_reply_to) const {
    return "host " + target_.host + "[" + target_.ip + "] said: " + r.text() + " (in reply to " + std::string(in_reply_to) +
           " command)";
}

void Session::open_failed(delivery::Outcome outcome, std::string dsn, std::string text) {
    broken_ = true;
    timer_.del();
    if (bev_) bufferevent_disable(bev_.get(), EV_READ | EV_WRITE);
    busy_ = false;
    auto cb = std::move(on_open_);
    on_open_ = nullptr;
    on_broken_ = nullptr;
    if (!cb) return;
    OpenResult r{false, !connecting_, outcome, std::move(dsn), std::move(text)};
    later([cb, r] { cb(r); });
}

void Session::after_greeting(const smtp::Reply& r) {
    if (r.code != 220) {
        // Postfix's smtp_skip_5xx_greeting: a server that refuses to talk
        // to us is skipped for the next one, the mail is not bounced.
        open_failed(delivery::Outcome::Deferred, r.code >= 500 ? "4.0.0" : r.dsn(),
                    "host " + target_.host + "[" + target_.ip + "] refused to talk to me: " + r.text());
        return;
    }
    send_ehlo();
}

void Session::send_ehlo() {
    phase_ = "performing the EHLO handshake";
    command("EHLO " + settings_.helo_name, [this](const smtp::Reply& r) { after_ehlo(r); });
    flush();
}

void Session::after_ehlo(const smtp::Reply& r) {
    if (r.code != 250 && !helo_ && !tls_ && r.code >= 500) {
        // RFC 5321 3.2: an old server without EHLO.
        helo_ = true;
        phase_ = "performing the HELO handshake";
        command("HELO " + settings_.helo_name, [this](const smtp::Reply& h) { after_ehlo(h); });
        return;
    }
    if (r.code != 250) {
        open_failed(delivery::Outcome::Deferred, r.code >= 500 ? "4.0.0" : r.dsn(),
                    said(r, helo_ ? "HELO" : "EHLO"));
        return;
    }
    ext_ = helo_ ? smtp::Extensions() : smtp::parse_ehlo(r);
    if (level_ == TlsLevel::Dane && target_.tlsa.empty()) {
        // RFC 7672 2.2: TLSA records we could not look up mean no
        // connection at all, never a downgrade.
        open_failed(delivery::Outcome::Deferred, "4.7.5",
                    "TLSA lookup error for " + target_.label() + ": " + target_.tlsa_error);
        return;
    }
    if (!tls_ && level_ != TlsLevel::None) {
        if (ext_.starttls) {
            phase_ = "sending STARTTLS";
            command("STARTTLS", [this](const smtp::Reply& s) {
                if (s.code == 220) {
                    start_tls();
                } else if (level_ >= TlsLevel::Encrypt) {
                    open_failed(delivery::Outcome::Deferred, "4.7.4", "TLS is required, but " + said(s, "STARTTLS"));
                } else {
                    authenticate();
                }
            });
            return;
        }
        if (level_ >= TlsLevel::Encrypt) {
            open_failed(delivery::Outcome::Deferred, "4.7.4",
                        "TLS is required, but was not offered by host " + target_.host + "[" + target_.ip + "]");
            return;
        }
    }
    authenticate();
}

void Session::opened() {
    busy_ = false;
    on_broken_ = [this](const std::string&) {};  // noticed by the next send()
    phase_ = "idle";
    auto cb = std::move(on_open_);
    on_open_ = nullptr;
    if (cb) later([cb] { cb(OpenResult{true, true, delivery::Outcome::Delivered, "", ""}); });
}

void Session::send(const delivery::Request& request, std::vector<const delivery::RequestRecipient*> recipients,
                   std::function<void(TransactionResult)> done) {
    busy_ = true;
    tx_ = std::make_unique<Tx>();
    tx_->request = &request;
    tx_->recipients = std::move(recipients);
    tx_->done = std::move(done);
    tx_->start = now();
    on_broken_ = [this](const std::string& why) {
        if (!tx_) return;
        tx_->result.error = "lost connection with " + target_.host + "[" + target_.ip + "] while " + phase_ +
                            (why.empty() ? "" : " (" + why + ")");
        finish_transaction();
    };
    if (broken_) {
        tx_->result.error = "connection to " + target_.label() + " was closed";
        later([this] { finish_transaction(); });
        return;
    }
    begin_transaction();
}

void Session::begin_transaction() {
    Tx& tx = *tx_;
    const delivery::Request& req = *tx.request;
    auto all = [&](delivery::Outcome o, const std::string& dsn, const std::string& text) {
        for (const auto* r : tx.recipients) tx.result.results.push_back({r->index, o, dsn, text});
        later([this] { finish_transaction(); });
    };
    std::string host = target_.host + "[" + target_.ip + "]";
    if (req.smtputf8 && !ext_.smtputf8) {
        // RFC 6531 3.4: no downgrade of internationalised addresses.
        all(delivery::Outcome::Bounced, "5.6.7", "SMTPUTF8 is required, but was not offered by host " + host);
        return;
    }
    bool eight_bit = req.body_type == "8BITMIME";
    if (eight_bit && !ext_.eightbitmime) {
        std::string message;
        char buf[kBodyChunk];
        for (off_t off = 0;;) {
            ssize_t n = ::pread(req.body.get(), buf, sizeof buf, off);
            if (n < 0) {
                all(delivery::Outcome::Deferred, "4.3.0", std::string("cannot read the queue file: ") + std::strerror(errno));
                return;
            }
            if (n == 0) break;
            message.append(buf, static_cast<size_t>(n));
            off += n;
        }
        tx.body = smtp::downgrade_8bit(message);
        tx.converted = true;
    }
    uint64_t size = tx.converted ? tx.body.size() : req.size;
    if (ext_.size_limit > 0 && size > ext_.size_limit) {
        all(delivery::Outcome::Bounced, "5.3.4",
            "message size " + std::to_string(size) + " exceeds size limit " + std::to_string(ext_.size_limit) +
                " of server " + host);
        return;
    }
    if (transactions_ > 0) {
        phase_ = "sending RSET";
        command("RSET", [this](const smtp::Reply& r) {
            if (!r.positive()) fail("RSET rejected: " + r.text());
        });
    }
    std::string mail = "MAIL FROM:<" + req.sender + ">";
    if (ext_.size) mail += " SIZE=" + std::to_string(size);
    if (eight_bit && ext_.eightbitmime) mail += " BODY=8BITMIME";
    if (req.smtputf8) mail += " SMTPUTF8";
    if (ext_.dsn && !req.dsn_ret.empty()) mail += " RET=" + req.dsn_ret;
    if (ext_.dsn && !req.dsn_envid.empty()) mail += " ENVID=" + smtp::xtext_encode(req.dsn_envid);
    command(mail, [this](const smtp::Reply& r) {
        Tx& t = *tx_;
        t.mail_ok = r.positive();
        if (t.mail_ok) return;
        for (const auto* rc : t.recipients)
            if (t.answered.insert(rc->index).second)
                t.result.results.push_back({rc->index, r.code >= 500 ? delivery::Outcome::Bounced : delivery::Outcome::Deferred,
                                            r.dsn(), said(r, "MAIL FROM")});
        if (!ext_.pipelining) {
            queue_.clear();
            finish_transaction();
        }
    });
    for (size_t i = 0; i < tx.recipients.size(); ++i) {
        const auto* rc = tx.recipients[i];
        std::string line = "RCPT TO:<" + rc->address + ">";
        if (ext_.dsn && rc->notify) line += " NOTIFY=" + notify_words(rc->notify);
        if (ext_.dsn && !rc->orcpt.empty()) {
            std::string o = orcpt_param(rc->orcpt);
            if (!o.empty()) line += " ORCPT=" + o;
        }
        bool last = i + 1 == tx.recipients.size();
        command(line, [this, rc, last](const smtp::Reply& r) {
            Tx& t = *tx_;
            if (!t.mail_ok || t.answered.count(rc->index)) return;
            if (r.positive()) {
                t.accepted.push_back(rc);
            } else {
                t.answered.insert(rc->index);
                t.result.results.push_back({rc->index, r.code >= 500 ? delivery::Outcome::Bounced : delivery::Outcome::Deferred,
                                            r.dsn(), said(r, "RCPT TO")});
            }
            if (last && t.accepted.empty() && !ext_.pipelining) {
                queue_.clear();
                finish_transaction();
            }
        });
    }
    command("DATA", [this](const smtp::Reply& r) {
        Tx& t = *tx_;
        if (r.code == 354) {
            if (!t.mail_ok || t.accepted.empty()) {
                // RFC 2920 3.1: no valid recipient, yet the server wants data.
                phase_ = "sending end of data";
                bufferevent_write(bev_.get(), ".\r\n", 3);
                expect([this](const smtp::Reply&) { finish_transaction(); }, settings_.data_done_timeout);
                return;
            }
            send_body();
            return;
        }
        if (t.mail_ok)
            for (const auto* rc : t.accepted)
                if (t.answered.insert(rc->index).second)
                    t.result.results.push_back({rc->index, r.code >= 500 ? delivery::Outcome::Bounced : delivery::Outcome::Deferred,
                                                r.dsn(), said(r, "DATA")});
        finish_transaction();
    });
    phase_ = "sending MAIL FROM";
    flush();
}

void Session::send_body() {
    phase_ = "sending message body";
    Tx& t = *tx_;
    if (t.converted) {
        std::string out = t.encoder.feed(t.body);
        out += t.encoder.finish();
        bufferevent_write(bev_.get(), out.data(), out.size());
        t.body.clear();
        phase_ = "sending end of data -- message may be sent more than once";
        expect([this](const smtp::Reply& r) { on_final(r); }, settings_.data_done_timeout);
        return;
    }
    t.sending_body = true;
    bufferevent_setwatermark(bev_.get(), EV_WRITE, kOutputHigh / 4, 0);
    // No reply is awaited while the body streams: a server that stops
    // reading is caught by a write timeout instead (on_event, TIMEOUT).
    timeval write_limit{static_cast<time_t>(settings_.reply_timeout.count() / 1000), 0};
    bufferevent_set_timeouts(bev_.get(), nullptr, &write_limit);
    pump_body();
}

void Session::pump_body() {
    Tx& t = *tx_;
    evbuffer* out = bufferevent_get_output(bev_.get());
    char buf[kBodyChunk];
    while (t.sending_body && evbuffer_get_length(out) < kOutputHigh) {
        ssize_t n = ::pread(t.request->body.get(), buf, sizeof buf, t.offset);
        if (n < 0) {
            // Our own failure: the server must not take a truncated message.
            fail(std::string("cannot read the queue file: ") + std::strerror(errno));
            return;
        }
        if (n == 0) {
            t.sending_body = false;
            bufferevent_set_timeouts(bev_.get(), nullptr, nullptr);
            std::string end = t.encoder.finish();
            bufferevent_write(bev_.get(), end.data(), end.size());
            phase_ = "sending end of data -- message may be sent more than once";
            expect([this](const smtp::Reply& r) { on_final(r); }, settings_.data_done_timeout);
            return;
        }
        t.offset += n;
        std::string chunk = t.encoder.feed(std::string_view(buf, static_cast<size_t>(n)));
        bufferevent_write(bev_.get(), chunk.data(), chunk.size());
    }
}

void Session::on_final(const smtp::Reply& r) {
    Tx& t = *tx_;
    for (const auto* rc : t.accepted) {
        if (!t.answered.insert(rc->index).second) continue;
        if (r.positive())
            t.result.results.push_back({rc->index, delivery::Outcome::Delivered, r.enhanced.empty() ? "2.0.0" : r.enhanced, r.text()});
        else
            t.result.results.push_back({rc->index, r.code >= 500 ? delivery::Outcome::Bounced : delivery::Outcome::Deferred,
                                        r.dsn(), said(r, "end of DATA")});
    }
    finish_transaction();
}

void Session::finish_transaction() {
    if (!tx_) return;
    std::unique_ptr<Tx> tx = std::move(tx_);
    ++transactions_;
    busy_ = false;
    phase_ = "idle";
    if (!broken_) on_broken_ = [](const std::string&) {};
    tx->result.transfer_seconds = now() - tx->start;
    if (tx->result.error.empty() && tx->answered.size() < tx->recipients.size())
        tx->result.error = "lost connection with " + target_.host + "[" + target_.ip + "]";
    auto done = std::move(tx->done);
    TransactionResult result = std::move(tx->result);
    later([done, result] { done(result); });
}

void Session::quit(std::function<void()> closed) {
    if (broken_ || !bev_ || busy_) {
        later(std::move(closed));
        return;
    }
    busy_ = true;
    phase_ = "sending QUIT";
    on_broken_ = [this, closed](const std::string&) { later(closed); };
    command("QUIT", [this](const smtp::Reply&) { fail(""); });
    flush();
    arm_timer(std::chrono::milliseconds(2000));
}

}  // namespace tern::smtpc
