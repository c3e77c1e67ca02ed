// Session I/O: bufferevent callbacks, command line framing, replies,
// STARTTLS, timeouts and closing (see session.hpp).
#include "smtpd/session.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "lib/log/log.hpp"
#include "lib/net/address.hpp"
#include "lib/smtp/reply.hpp"
#include "lib/sys/clock.hpp"
#include "lib/tls/context.hpp"
#include "smtpd/server.hpp"

namespace tern::smtpd {
namespace {

bool is_loopback(const sockaddr* sa) {
    if (sa->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

constexpr int kClosePollMs = 20;
constexpr int kClosePolls = 250;  // give a final reply up to 5 s to leave
// Input read but not yet processed (pipelined during a commit): reading
// pauses beyond this.
constexpr size_t kMaxUnreadInput = 256 * 1024;

}  // namespace

Session::Session(Server& server, int fd, const sockaddr* peer, bool implicit_tls)
    : server_(server), implicit_tls_(implicit_tls) {
    if (peer->sa_family == AF_UNIX) {
        // The local submission socket: trusted like mynetworks.
        addr_ = "127.0.0.1";
        name_ = "localhost";
        in_mynetworks_ = true;
    } else {
        addr_ = net::ip_string(peer);
        // No reverse DNS: a blocking resolver would stall every session of
        // this process.  Postfix's "unknown" keeps log filters working.
        name_ = is_loopback(peer) ? "localhost" : "unknown";
        in_mynetworks_ = server_.mynetworks().contains(peer);
        loopback_ = is_loopback(peer);
    }
    peer_ = name_ + "[" + addr_ + "]";
    event_base* base = server_.base();
    if (implicit_tls_ && server_.tls()) bev_ = tls::accept_tls(base, fd, server_.tls());
    else if (!implicit_tls_) {
        bev_ = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (bev_) {
            plain_fd_ = fd;
            plain_reader_ = std::make_unique<event::SocketReader>(
                base, fd, bufferevent_get_input(bev_), kMaxUnreadInput,
                [this](event::SocketReader::What what) { return on_plain_input(what); });
        }
    }
    if (!bev_) ::close(fd);
    close_timer_ = event::timer(base, [this](short) {
        if (!bev_) return;
        if (output_empty() || ++closing_polls_ >= kClosePolls) close_now(nullptr);
        else close_timer_.add(std::chrono::milliseconds(kClosePollMs));
    });
    pause_timer_ = event::timer(base, [this](short) {
        paused_ = false;
        if (bev_ && input_ == Input::Command) {
            enable_reading();
            process();
        }
    });
}

Session::~Session() {
    plain_reader_.reset();  // before its socket is closed
    if (bev_) bufferevent_free(bev_);
}

void Session::install_callbacks() {
    bufferevent_setcb(bev_, &Session::on_read, &Session::on_write, &Session::on_event, this);
    set_timeout(server_.settings().timeout);
    // Reading stays on while a commit is in progress (Input::Waiting); what a
    // client pipelines meanwhile waits in the input buffer, which stops
    // growing here.
    bufferevent_setwatermark(bev_, EV_READ, 0, kMaxUnreadInput);
    // A plain connection reads with plain_reader_, writes its replies itself
    // (write_out) and asks for EV_WRITE only when the socket did not take
    // everything: enabling it now would cost two epoll_ctl and a wakeup per
    // connection.
    if (plain_fd_ < 0) bufferevent_enable(bev_, EV_WRITE);
    enable_reading();
}

void Session::set_timeout(std::chrono::seconds seconds) {
    read_timeout_ = seconds;
    timeval tv{static_cast<time_t>(seconds.count()), 0};
    bufferevent_set_timeouts(bev_, &tv, &tv);
    if (plain_fd_ >= 0 && plain_reader_->enabled()) plain_reader_->enable(seconds);
}

void Session::enable_reading() {
    if (plain_fd_ >= 0) plain_reader_->enable(read_timeout_);
    else bufferevent_enable(bev_, EV_READ);
}

void Session::disable_reading() {
    if (plain_fd_ >= 0) plain_reader_->disable();
    else bufferevent_disable(bev_, EV_READ);
}

// What plain_reader_ found: handled as the bufferevent's callbacks handle it.
bool Session::on_plain_input(event::SocketReader::What what) {
    using What = event::SocketReader::What;
    switch (what) {
    case What::Data:
        on_read(bev_, this);
        if (!bev_) return false;
        plain_reader_->resume();
        return true;
    case What::Timeout:
        on_event(bev_, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, this);
        return bev_ != nullptr;
    case What::Eof:
        on_event(bev_, BEV_EVENT_READING | BEV_EVENT_EOF, this);
        return false;
    case What::Error:
        on_event(bev_, BEV_EVENT_READING | BEV_EVENT_ERROR, this);
        return false;
    }
    return false;
}

void Session::start() {
    if (!bev_) {
        log::warning("cannot set up a connection from %s", peer_.c_str());
        server_.finished(this);
        return;
    }
    log::info("connect from %s", peer_.c_str());
    install_callbacks();
    if (implicit_tls_) input_ = Input::Handshake;
    const Settings& settings = server_.settings();
    int64_t now = sys::now_s();
    if (auto* limits = server_.limits()) {
        auto blocked = limits->blocked(policy::Kind::Client, addr_, now);
        if (blocked && *blocked) {
            reply_line("421 4.7.0 " + settings.myhostname + " Error: too many messages from " + addr_ +
                       ", rate limit exceeded, try later");
            close_after_reply();
            return;
        }
        // Like Postfix's smtpd_client_event_limit_exceptions: the exempt
        // networks ($mynetworks) are not counted either, which also saves two
        // shared LMDB write transactions per connection from them.
        if (settings.limits.connection_limit > 0 && !settings.limits.exceptions.contains(addr_)) {
            auto count = limits->connect(addr_, getpid());
            if (count) {
                counted_connection_ = true;
                if (*count > settings.limits.connection_limit) {
                    log::warning("too many connections from %s: %lld", peer_.c_str(), *count);
                    reply_line("421 4.7.0 " + settings.myhostname + " Error: too many connections from " + addr_);
                    close_after_reply();
                    return;
                }
            } else {
                log::warning("connection count for %s: %s", peer_.c_str(), count.message().c_str());
            }
        }
    }
    reply(220, "", settings.banner);
}

// ---- I/O callbacks ----

void Session::on_read(bufferevent*, void* arg) {
    auto* self = static_cast<Session*>(arg);
    self->holding_ = true;
    self->process();
    self->holding_ = false;
    self->flush_held();
}

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
        log::info("timeout after %s from %s", self->last_command_.c_str(), self->peer_.c_str());
        self->reply_line("421 4.4.2 " + self->server_.settings().myhostname + " Error: timeout exceeded");
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
    while (bev_ && !paused_) {
        switch (input_) {
        case Input::Command:
            if (!read_command()) return;
            break;
        case Input::Data:
            consume_data();
            if (input_ == Input::Data) return;
            break;
        case Input::Bdat:
            consume_bdat();
            if (input_ == Input::Bdat) return;
            break;
        case Input::Waiting:
        case Input::Handshake:
        case Input::Closing:
            return;
        }
    }
}

// One command line: CRLF terminated (a bare LF is tolerated in commands,
// like Postfix; the smuggling defence concerns message content).
bool Session::read_command() {
    evbuffer* in = bufferevent_get_input(bev_);
    size_t eol_len = 0;
    evbuffer_ptr p = evbuffer_search_eol(in, nullptr, &eol_len, EVBUFFER_EOL_LF);
    size_t limit = server_.settings().line_length_limit;
    if (p.pos < 0) {
        size_t len = evbuffer_get_length(in);
        if (len > limit) {
            if (!skipping_long_line_) {
                skipping_long_line_ = true;
                error_reply("500 5.5.0 Error: line too long");
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
        error_reply("500 5.5.0 Error: line too long");
        return true;
    }
    std::string line(static_cast<size_t>(p.pos), '\0');
    evbuffer_remove(in, line.data(), line.size());
    evbuffer_drain(in, eol_len);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    dispatch(line);
    return true;
}

void Session::send(std::string_view text) {
    if (!bev_) return;
    if (holding_ && plain_fd_ >= 0) held_.append(text);
    else write_out(text);
}

void Session::flush_held() {
    if (held_.empty()) return;
    std::string text = std::move(held_);
    held_.clear();
    if (!bev_) return;
    write_out(text);
    if (input_ == Input::Closing && output_empty()) close_timer_.activate();
}

void Session::write_out(std::string_view text) {
    if (plain_fd_ >= 0 && evbuffer_get_length(bufferevent_get_output(bev_)) == 0) {
        while (!text.empty()) {
            ssize_t n = ::send(plain_fd_, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;  // full or failed: bev_ writes the rest or reports the error
            text.remove_prefix(static_cast<size_t>(n));
        }
        if (text.empty()) return;
        bufferevent_enable(bev_, EV_WRITE);
    }
    bufferevent_write(bev_, text.data(), text.size());
}

bool Session::output_empty() const {
    if (!bev_) return true;
    if (!held_.empty() || evbuffer_get_length(bufferevent_get_output(bev_)) != 0) return false;
    bufferevent* under = bufferevent_get_underlying(bev_);
    return !under || evbuffer_get_length(bufferevent_get_output(under)) == 0;
}

void Session::reply(int code, std::string_view enhanced, std::string_view text) {
    send(smtp::format_reply(code, enhanced, text));
}

void Session::reply_line(const std::string& full) {
    std::string out;
    out.reserve(full.size() + 2);
    for (char c : full) {
        auto u = static_cast<unsigned char>(c);
        out.push_back(u < 32 || u == 127 ? '?' : c);
    }
    out += "\r\n";
    send(out);
}

void Session::error_reply(const std::string& full) {
    ++errors_;
    const Settings& settings = server_.settings();
    if (settings.hard_error_limit > 0 && errors_ >= settings.hard_error_limit) {
        reply_line(full);
        log::warning("too many errors after %s from %s", full.substr(0, 3).c_str(), peer_.c_str());
        reply_line("421 4.7.0 " + settings.myhostname + " Error: too many errors");
        close_after_reply();
        return;
    }
    reply_line(full);
    if (settings.soft_error_limit > 0 && errors_ >= settings.soft_error_limit) pause_for_errors();
}

// Past the soft error limit every error costs the client a second, like
// Postfix's smtpd_error_sleep_time: slows down address harvesting.
void Session::pause_for_errors() {
    if (!bev_ || paused_) return;
    paused_ = true;
    disable_reading();
    pause_timer_.add(std::chrono::milliseconds(1000));
}

void Session::close_after_reply() {
    if (!bev_ || input_ == Input::Closing) return;
    input_ = Input::Closing;
    disable_reading();
    closing_polls_ = 0;
    if (output_empty()) close_timer_.activate();  // the last reply has left
    else close_timer_.add(std::chrono::milliseconds(1));
}

void Session::close_now(const char* why) {
    if (!bev_) return;
    if (why && !quitting_) log::info("%s after %s from %s", why, last_command_.c_str(), peer_.c_str());
    abandon_body();
    auth_cancel();
    log_summary();
    if (counted_connection_) {
        if (auto* limits = server_.limits()) (void)limits->disconnect(addr_, getpid());
        counted_connection_ = false;
    }
    flush_held();
    close_timer_.del();
    pause_timer_.del();
    if (plain_reader_) plain_reader_->disable();  // before bufferevent_free closes the socket
    bufferevent_free(bev_);
    bev_ = nullptr;
    input_ = Input::Closing;
    server_.finished(this);
}

// ---- STARTTLS (RFC 3207) ----

void Session::start_tls() {
    // RFC 3207 4.2 / CVE-2011-0411: anything pipelined after STARTTLS was
    // sent in the clear and must not be executed inside the TLS session.
    evbuffer* in = bufferevent_get_input(bev_);
    evbuffer_drain(in, evbuffer_get_length(in));
    flush_held();  // the 220 leaves in the clear, before the handshake
    // The TLS filter reads through the plain bufferevent from now on.
    plain_reader_->disable();
    bufferevent_enable(bev_, EV_READ | EV_WRITE);
    bufferevent* tls = tls::start_server_tls(server_.base(), bev_, server_.tls());
    if (!tls) {
        log::warning("cannot start TLS with %s: %s", peer_.c_str(), tls::openssl_errors().c_str());
        close_now(nullptr);
        return;
    }
    bev_ = tls;
    plain_fd_ = -1;
    input_ = Input::Handshake;
    install_callbacks();
}

void Session::tls_established() {
    tls_ = true;
    tls_description_ = tls::describe(tls::ssl_of(bev_));
    log::info("Anonymous TLS connection established from %s: %s", peer_.c_str(), tls_description_.c_str());
    // RFC 3207 4.2: forget everything learned before the handshake.
    reset_transaction();
    sasl_user_.clear();
    helo_.clear();
    esmtp_ = false;
    input_ = Input::Command;
    process();
}

void Session::log_summary() {
    // Postfix order, so that log parsers see the familiar line.
    static constexpr smtp::Verb order[] = {smtp::Verb::Helo, smtp::Verb::Ehlo, smtp::Verb::Starttls, smtp::Verb::Auth,
                                           smtp::Verb::Mail, smtp::Verb::Rcpt, smtp::Verb::Data, smtp::Verb::Bdat,
                                           smtp::Verb::Rset, smtp::Verb::Noop, smtp::Verb::Vrfy, smtp::Verb::Expn,
                                           smtp::Verb::Help, smtp::Verb::Quit, smtp::Verb::Unknown};
    std::string line = "disconnect from " + peer_;
    for (smtp::Verb v : order) {
        auto [ok, total] = counts_[static_cast<size_t>(v)];
        if (total == 0) continue;
        line += " " + std::string(smtp::verb_key(v)) + "=" + std::to_string(ok);
        if (ok != total) line += "/" + std::to_string(total);
    }
    line += " commands=" + std::to_string(command_ok_);
    if (command_ok_ != commands_) line += "/" + std::to_string(commands_);
    log::info("%s", line.c_str());
}

}  // namespace tern::smtpd
