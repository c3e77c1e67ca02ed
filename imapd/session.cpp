// Session I/O: bufferevent callbacks, command framing through
// imap::CommandReader, output, STARTTLS, timeouts and closing (see session.hpp).
#include "imapd/session.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>

#include "imapd/compress.hpp"
#include "imapd/server.hpp"
#include "lib/imap/response.hpp"
#include "lib/log/log.hpp"
#include "lib/net/address.hpp"
#include "lib/tls/context.hpp"
#include "lib/tls/server_connection.hpp"

namespace tern::imapd {
namespace {

bool is_loopback(const sockaddr* sa) {
    if (sa->sa_family == AF_UNIX) return true;
    if (sa->sa_family == AF_INET)
        return (ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const auto& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(&a) || (IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127);
    }
    return false;
}

constexpr int kClosePollMs = 20;
constexpr int kClosePolls = 250;  // a final response gets up to 5 s to leave

}  // namespace

Session::Session(Server& server, int fd, const sockaddr* peer, bool implicit_tls)
    : server_(server), implicit_tls_(implicit_tls), reader_(server.settings().limits) {
    loopback_ = is_loopback(peer);
    addr_ = peer->sa_family == AF_UNIX ? "127.0.0.1" : net::ip_string(peer);
    peer_ = (loopback_ ? "localhost[" : "unknown[") + addr_ + "]";
    event_base* base = server_.base();
    bev_ = tls::server_connection(base, fd, implicit_tls_, server_.tls());
    close_timer_ = event::timer(base, [this](short) {
        if (!bev_) return;
        if (tls::output_sent(bev_) || ++closing_polls_ >= kClosePolls) close_now(nullptr);
        else close_timer_.add(std::chrono::milliseconds(kClosePollMs));
    });
    view_prefetch_ = event::timer(base, [this](short) {
        if (mailbox_) mailbox_->expect_view();
    });
}

Session::~Session() {
    if (ticket_) server_.auth().cancel(ticket_);
    backend_.reset();  // before the client bufferevent it relays
    detach_compression(compression_);
    if (bev_) bufferevent_free(bev_);
}

void Session::start() {
    if (!bev_) {
        log::warning("cannot set up a connection from %s", peer_.c_str());
        server_.finished(this);
        return;
    }
    log::info("connect from %s", peer_.c_str());
    install_callbacks();
    if (implicit_tls_) {
        input_ = Input::Handshake;
        return;
    }
    greeting();
}

void Session::install_callbacks() {
    bufferevent_setcb(bev_, &Session::on_read, &Session::on_write, &Session::on_event, this);
    update_timeout();
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
}

void Session::update_timeout() {
    if (!bev_) return;
    auto t = state_ == State::NotAuthenticated ? server_.settings().login_timeout : server_.settings().timeout;
    timeval tv{static_cast<time_t>(t.count()), 0};
    // Reads time out (the client went quiet); a write times out when the
    // client stopped reading our output.
    bufferevent_set_timeouts(bev_, &tv, &tv);
}

void Session::on_read(bufferevent*, void* arg) { static_cast<Session*>(arg)->process(); }

void Session::on_write(bufferevent*, void* arg) {
    auto* self = static_cast<Session*>(arg);
    if (self->input_ == Input::Closing && !self->close_timer_.pending()) self->close_timer_.activate();
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
        log::info("autologout: idle timeout from %s%s%s", self->peer_.c_str(), self->user_.empty() ? "" : " user=",
                  self->user_.c_str());
        self->bye_and_close("Autologout; idle for too long");
        return;
    }
    if ((what & BEV_EVENT_ERROR) && self->input_ == Input::Handshake) {
        std::string errors = tls::bufferevent_errors(self->bev_);
        if (!errors.empty()) log::warning("TLS handshake error from %s: %s", self->peer_.c_str(), errors.c_str());
    }
    self->close_now("disconnected");
}

void Session::process() {
    using Event = imap::CommandReader::Event;
    while (bev_ && (input_ == Input::Commands || input_ == Input::Sasl || input_ == Input::Idle)) {
        evbuffer* in = bufferevent_get_input(bev_);
        size_t len = evbuffer_get_length(in);
        if (len == 0) break;
        size_t want = std::min(len, reader_.wanted());
        const char* data = reinterpret_cast<const char*>(evbuffer_pullup(in, static_cast<ev_ssize_t>(want)));
        size_t used = 0;
        Event e = reader_.feed(std::string_view(data, want), used);
        evbuffer_drain(in, used);
        switch (e) {
        case Event::NeedMore:
            if (used == 0) goto done;
            break;
        case Event::Continue:
            send("+ Ready for literal data\r\n");
            break;
        case Event::TooBig:
            tag_ = reader_.tag();
            if (reader_.is_append())
                tagged("NO", "TOOBIG", "message of " + std::to_string(reader_.refused_size()) +
                                           " bytes is larger than APPENDLIMIT (" +
                                           std::to_string(server_.settings().limits.append_max) + ")");
            else
                tagged("BAD", "TOOBIG", "literal of " + std::to_string(reader_.refused_size()) +
                                            " bytes is larger than this command allows (" +
                                            std::to_string(server_.settings().limits.command_max) + ")");
            break;
        case Event::LineTooLong:
            tag_ = reader_.tag();
            tagged("BAD", "TOOBIG",
                   "command line too long (limit " + std::to_string(server_.settings().limits.line_max) + " bytes)");
            break;
        case Event::Fatal:
            bye_and_close(reader_.error());
            break;
        case Event::RawLine:
            if (input_ == Input::Sasl) sasl_line(reader_.command());
            else if (input_ == Input::Idle) idle_line(reader_.command());
            break;
        case Event::Command:
            execute(reader_.command());
            break;
        }
    }
done:
    // An idle connection keeps no command buffer.
    reader_.shrink();
}

void Session::resume() {
    if (!bev_ || input_ == Input::Closing) return;
    input_ = Input::Commands;
    bufferevent_enable(bev_, EV_READ);
    process();
}

void Session::send(std::string_view text) {
    if (capture_) capture_->append(text);
    else if (bev_ && input_ != Input::Closing) bufferevent_write(bev_, text.data(), text.size());
}

void Session::untagged(std::string_view text) {
    std::string line;
    line.reserve(text.size() + 4);
    line += "* ";
    line.append(text);
    line += "\r\n";
    send(line);
}

void Session::tagged(std::string_view status, std::string_view code, std::string_view text) {
    send(imap::status_line(tag_.empty() ? "*" : tag_, status, code, text));
}

void Session::bye_and_close(std::string_view text) {
    untagged("BYE " + std::string(text));
    close_after_output();
}

void Session::close_after_output() {
    if (!bev_ || input_ == Input::Closing) return;
    input_ = Input::Closing;
    notify_.del();
    bufferevent_disable(bev_, EV_READ);
    closing_polls_ = 0;
    close_timer_.add(std::chrono::milliseconds(1));
}

void Session::close_now(const char* why) {
    if (!bev_) return;
    if (why) log::info("%s from %s%s%s", why, peer_.c_str(), user_.empty() ? "" : " user=", user_.c_str());
    if (ticket_) {
        server_.auth().cancel(ticket_);
        ticket_ = 0;
    }
    close_timer_.del();
    notify_ = event::Watch();
    mailbox_.reset();
    store_.reset();
    if (backend_) backend_->detach();  // freed with the session (we may be inside its callback)
    detach_compression(compression_);
    compression_ = nullptr;
    bufferevent_free(bev_);
    bev_ = nullptr;
    input_ = Input::Closing;
    server_.finished(this);
}

// ---- STARTTLS (RFC 9051 6.2.1) ----

void Session::start_tls() {
    // The pipelined input goes (see start_tls_after_command), and with it
    // the reader's state.
    reader_ = imap::CommandReader(server_.settings().limits);
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
    input_ = Input::Commands;
    if (!greeted_) greeting();
    process();
}

}  // namespace tern::imapd
