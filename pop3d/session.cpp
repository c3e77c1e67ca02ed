// Session I/O: bufferevent callbacks, command line framing, responses,
// STLS, the RETR/TOP pump, timeouts and closing (see session.hpp).
#include "pop3d/session.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <unistd.h>

#include "lib/log/log.hpp"
#include "lib/net/address.hpp"
#include "lib/tls/context.hpp"
#include "lib/tls/server_connection.hpp"
#include "pop3d/server.hpp"

namespace tern::pop3d {
namespace {

constexpr int kClosePollMs = 20;
constexpr int kClosePolls = 250;       // a final response gets up to 5 s to leave
constexpr int kMaxErrors = 20;         // bad commands before the connection is closed
constexpr size_t kPumpPiece = 64 * 1024;     // stored bytes encoded per step
constexpr size_t kPumpHigh = 256 * 1024;     // stop encoding while this much waits to be sent
constexpr size_t kPumpLow = 64 * 1024;       // ... and go on when it drained below this

bool loopback(const std::string& ip) { return ip.rfind("127.", 0) == 0 || ip == "::1"; }

}  // namespace

Session::Session(Server& server, int fd, const sockaddr* peer) : server_(server) {
    addr_ = net::ip_string(peer);
    peer_ = (loopback(addr_) ? "localhost[" : "unknown[") + addr_ + "]";
    secure_network_ = server_.settings().secure_networks.contains(peer);
    event_base* base = server_.base();
    bev_ = tls::server_connection(base, fd, server_.settings().implicit_tls, server_.tls());
    close_timer_ = event::timer(base, [this](short) {
        if (!bev_) return;
        if (tls::output_sent(bev_) || ++closing_polls_ >= kClosePolls) close_now(nullptr);
        else close_timer_.add(std::chrono::milliseconds(kClosePollMs));
    });
}

Session::~Session() {
    if (ticket_) server_.auth().cancel(ticket_);
    backend_.reset();  // before the client bufferevent it relays
    if (bev_) bufferevent_free(bev_);
}

void Session::install_callbacks() {
    bufferevent_setcb(bev_, &Session::on_read, &Session::on_write, &Session::on_event, this);
    timeval tv{static_cast<time_t>(server_.settings().timeout.count()), 0};
    bufferevent_set_timeouts(bev_, &tv, &tv);
    bufferevent_setwatermark(bev_, EV_WRITE, kPumpLow, 0);
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
}

void Session::start() {
    if (!bev_) {
        log::warning("cannot set up a connection from %s", peer_.c_str());
        server_.finished(this);
        return;
    }
    log::info("connect from %s", peer_.c_str());
    install_callbacks();
    if (server_.settings().implicit_tls) {
        input_ = Input::Handshake;  // the greeting goes out once TLS is up
        return;
    }
    send(pop3::ok(server_.settings().greeting));
}

// ---- I/O callbacks ----

void Session::on_read(bufferevent*, void* arg) { static_cast<Session*>(arg)->process(); }

void Session::on_write(bufferevent*, void* arg) {
    auto* self = static_cast<Session*>(arg);
    if (self->input_ == Input::Sending) {
        self->pump_message();
        if (self->input_ == Input::Command) self->resume();  // commands pipelined behind it
    } else if (self->input_ == Input::Closing && !self->close_timer_.pending()) self->close_timer_.activate();
}

void Session::on_event(bufferevent*, short what, void* arg) {
    auto* self = static_cast<Session*>(arg);
    if (what & BEV_EVENT_CONNECTED) {
        if (self->input_ == Input::Handshake) self->tls_established();
        return;
    }
    if (self->input_ == Input::Closing) {
        self->close_now(nullptr);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        // RFC 1939 3: the autologout timer closes without entering UPDATE.
        if (self->input_ == Input::Sending) {
            self->close_now("timeout while sending");
            return;
        }
        log::info("timeout from %s", self->peer_.c_str());
        self->send(pop3::err("", "autologout: idle for too long"));
        self->close_after_reply();
        return;
    }
    if ((what & BEV_EVENT_ERROR) && self->input_ == Input::Handshake) {
        std::string errors = tls::bufferevent_errors(self->bev_);
        if (!errors.empty()) log::warning("SSL_accept error from %s: %s", self->peer_.c_str(), errors.c_str());
    }
    self->close_now("lost connection");  // EOF or error
}

void Session::process() {
    while (bev_ && (input_ == Input::Command || input_ == Input::SaslLine)) {
        if (!read_line()) return;
    }
}

void Session::resume() {
    if (!bev_ || input_ == Input::Closing) return;
    input_ = sasl_ ? Input::SaslLine : Input::Command;
    bufferevent_enable(bev_, EV_READ);
    process();
}

// One line, CRLF or bare LF terminated.  An overlong line is answered once
// and skipped up to its end, so its tail is never taken for a command.
bool Session::read_line() {
    evbuffer* in = bufferevent_get_input(bev_);
    size_t eol_len = 0;
    evbuffer_ptr p = evbuffer_search_eol(in, nullptr, &eol_len, EVBUFFER_EOL_LF);
    size_t limit = server_.settings().line_length_limit;
    std::string too_long = "line too long (at most " + std::to_string(limit) + " octets)";
    if (p.pos < 0) {
        size_t len = evbuffer_get_length(in);
        if (len > limit) {
            if (!skipping_long_line_) {
                skipping_long_line_ = true;
                error("", too_long);
            }
            evbuffer_drain(in, len);
        }
        return false;
    }
    size_t total = static_cast<size_t>(p.pos) + eol_len;
    if (skipping_long_line_) {
        skipping_long_line_ = false;
        evbuffer_drain(in, total);
        return true;
    }
    if (static_cast<size_t>(p.pos) > limit) {
        evbuffer_drain(in, total);
        error("", too_long);
        return true;
    }
    std::string line(static_cast<size_t>(p.pos), '\0');
    evbuffer_remove(in, line.data(), line.size());
    evbuffer_drain(in, eol_len);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (input_ == Input::SaslLine) sasl_line(line);
    else dispatch(line);
    std::fill(line.begin(), line.end(), '\0');  // may have held a password
    return true;
}

void Session::send(std::string_view text) {
    if (bev_) bufferevent_write(bev_, text.data(), text.size());
}

void Session::error(std::string_view code, std::string_view text) {
    send(pop3::err(code, text));
    if (++errors_ >= kMaxErrors) {
        log::warning("too many errors from %s", peer_.c_str());
        send(pop3::err("", "too many errors, closing the connection"));
        close_after_reply();
    }
}

void Session::close_after_reply() {
    if (!bev_ || input_ == Input::Closing) return;
    input_ = Input::Closing;
    bufferevent_disable(bev_, EV_READ);
    closing_polls_ = 0;
    close_timer_.add(std::chrono::milliseconds(1));
}

void Session::close_now(const char* why) {
    if (!bev_) return;
    lock_ = Fd();  // first: a client that saw the connection close may log in again at once
    log_disconnect(quit_ ? nullptr : why);
    if (ticket_) {
        server_.auth().cancel(ticket_);
        ticket_ = 0;
    }
    close_timer_.del();
    body_.reset();
    maildrop_.reset();  // no UPDATE: marked messages stay (RFC 1939 6)
    store_.reset();
    if (backend_) backend_->detach();  // freed with the session (we may be inside its callback)
    bufferevent_free(bev_);
    bev_ = nullptr;
    input_ = Input::Closing;
    server_.finished(this);
}

void Session::log_disconnect(const char* why) {
    std::string line = "disconnect from " + peer_;
    if (!user_.empty()) {
        line += ": user=<" + user_ + ">, top=" + std::to_string(top_count_) + ", retr=" + std::to_string(retr_count_) +
                "/" + std::to_string(retr_bytes_);
        if (maildrop_ && !quit_) line += ", deletions not applied=" + std::to_string(maildrop_->marked());
    }
    if (why) line += std::string(" (") + why + ")";
    log::info("%s", line.c_str());
}

// ---- STLS (RFC 2595 4) ----

void Session::start_tls() {
    bufferevent* tls = tls::start_tls_after_command(server_.base(), bev_, server_.tls(), peer_);
    if (!tls) {
        close_now(nullptr);
        return;
    }
    bev_ = tls;
    input_ = Input::Handshake;
    install_callbacks();
}

void Session::tls_established() {
    tls_ = true;
    log::info("TLS connection established from %s: %s", peer_.c_str(), tls::describe(tls::ssl_of(bev_)).c_str());
    // RFC 2595 4: forget what was said before the handshake.
    user_arg_.clear();
    input_ = Input::Command;
    if (server_.settings().implicit_tls) send(pop3::ok(server_.settings().greeting));
    process();
}

// ---- RETR / TOP: the stored message streamed through the encoder ----

void Session::pump_message() {
    if (!bev_ || !body_ || !encoder_) return;
    evbuffer* out = bufferevent_get_output(bev_);
    std::string_view bytes = body_->bytes();
    std::string chunk;
    while (evbuffer_get_length(out) < kPumpHigh) {
        chunk.clear();
        bool more = body_offset_ < bytes.size();
        if (more) {
            std::string_view piece = bytes.substr(body_offset_, kPumpPiece);
            body_offset_ += piece.size();
            more = encoder_->feed(piece, chunk) && body_offset_ < bytes.size();
        }
        if (!more) {
            encoder_->finish(chunk);
            send(chunk);
            body_.reset();
            encoder_.reset();
            // Back to commands; the caller (dispatch's loop or on_write) reads on.
            input_ = Input::Command;
            bufferevent_enable(bev_, EV_READ);
            return;
        }
        send(chunk);
    }
    // The rest follows from on_write once the client has taken this much.
}

}  // namespace tern::pop3d
