// The mail transaction's content: queue id at DATA/BDAT start, decoded
// content streamed to the BodyWriter (a file only for a body too large for
// the queue's records), refusing bad content (SMTP smuggling, size), and the
// group commit whose completion sends 250.
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ctime>

#include "lib/log/log.hpp"
#include "lib/smtp/reply.hpp"
#include "lib/sys/clock.hpp"
#include "smtpd/server.hpp"
#include "smtpd/session.hpp"

namespace tern::smtpd {
namespace {

// RFC 5322 3.3 date-time in local time: "Tue, 24 Nov 2026 02:17:46 +0000 (UTC)".
std::string rfc5322_date(time_t t) {
    tm local{};
    localtime_r(&t, &local);
    char buf[64];
    strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S %z (%Z)", &local);
    return buf;
}

constexpr size_t kHandOff = 64 * 1024;  // decoded bytes collected before the BodyWriter takes them

}  // namespace

void Session::reset_transaction() {
    abandon_body();
    have_mail_ = false;
    mail_ = smtp::MailFrom{};
    rcpts_.clear();
    data_.reset();
    chunks_.reset();
    decoded_.clear();
    bdat_failed_ = false;
    bdat_error_.clear();
}

void Session::abandon_body() {
    body_.reset();
    if (body_fd_) {
        // The client was not told "queued": no file may stay behind.
        body_fd_.reset();
        ::unlink(server_.store().body_path(queue_id_).c_str());
    }
    queue_id_.clear();
}

std::string Session::protocol_name() const {
    // RFC 3848 / RFC 6531 "with" protocol types.
    std::string p = esmtp_ ? "ESMTP" : "SMTP";
    if (mail_.smtputf8) p = "UTF8SMTP";
    if (tls_) p += "S";
    if (!sasl_user_.empty()) p += "A";  // RFC 3848: ESMTPA, ESMTPSA
    return p;
}

std::string Session::received_header() const {
    const Settings& settings = server_.settings();
    std::string ip = addr_.find(':') != std::string::npos ? "IPv6:" + addr_ : addr_;
    bool hide = !sasl_user_.empty() && server_.submission() && server_.submission()->settings().hide_client;
    std::string h = hide ? "Received: " : "Received: from " + helo_ + " (" + name_ + " [" + ip + "])\n";
    if (tls_ && !hide) h += "\t(using " + tls_description_ + ")\n";
    h += std::string(hide ? "" : "\t") + "by " + settings.myhostname + " (tern) with " + protocol_name() + " id " + queue_id_;
    // Naming the recipient is only safe when there is one (no Bcc leak).
    if (rcpts_.size() == 1) h += "\n\tfor <" + rcpts_.front().address + ">";
    h += "; " + rfc5322_date(time(nullptr)) + "\n";
    // A header line must not carry CR/LF from the client's HELO text.
    std::string clean;
    clean.reserve(h.size());
    for (size_t i = 0; i < h.size(); ++i) {
        char c = h[i];
        bool fold = c == '\n' && (i + 1 == h.size() || h[i + 1] == '\t');
        clean.push_back((c == '\r' || (c == '\n' && !fold)) ? ' ' : c);
    }
    return clean;
}

void Session::begin_body() {
    queue_id_ = queue::new_queue_id();
    if (sasl_user_.empty()) log::info("%s: client=%s", queue_id_.c_str(), peer_.c_str());
    else log::info("%s: client=%s, sasl_method=%s, sasl_username=%s", queue_id_.c_str(), peer_.c_str(),
                   sasl_method_.c_str(), sasl_user_.c_str());
    BodyOptions options;
    options.received = received_header();
    // Like Postfix's local_header_rewrite_clients: only our own clients get
    // missing headers filled in; mail from the world is stored as sent.
    options.add_missing = in_mynetworks_ || !sasl_user_.empty();
    options.new_message_id = "<" + queue_id_ + "@" + server_.settings().myhostname + ">";
    options.date = rfc5322_date(time(nullptr));
    // A body that fits in the queue's records never becomes a file.
    options.in_memory_max = queue::kSmallBodyMax;
    auto open_file = [this]() -> Result<int> {
        auto fd = server_.store().create_body(queue_id_);
        if (!fd) return Error{"cannot create queue file: " + fd.message()};
        body_fd_ = std::move(*fd);
        return body_fd_.get();
    };
    body_ = std::make_unique<BodyWriter>(open_file, std::move(options));
    decoded_.clear();
}

void Session::consume_data() {
    evbuffer* in = bufferevent_get_input(bev_);
    while (input_ == Input::Data && evbuffer_get_length(in) > 0) {
        iovec vec[16];
        int n = evbuffer_peek(in, -1, nullptr, vec, 16);
        if (n > 16) n = 16;
        size_t used = 0;
        for (int i = 0; i < n && !data_->done(); ++i)
            used += data_->feed(std::string_view(static_cast<const char*>(vec[i].iov_base), vec[i].iov_len), decoded_);
        evbuffer_drain(in, used);
        if (data_->error() != smtp::DataError::None) decoded_.clear();
        if (body_ && (decoded_.size() >= kHandOff || data_->done())) {
            body_->append(decoded_);
            decoded_.clear();
        }
        if (data_->done()) {
            end_of_message(data_->error());
            return;
        }
    }
    auto elapsed = std::chrono::milliseconds(sys::monotonic_ms() - data_started_ms_);
    if (input_ == Input::Data && elapsed > server_.settings().data_timeout) {
        log::info("timeout after %s from %s", last_command_.c_str(), peer_.c_str());
        reply_line("421 4.4.2 " + server_.settings().myhostname + " Error: timeout exceeded");
        close_after_reply();
    }
}

void Session::consume_bdat() {
    evbuffer* in = bufferevent_get_input(bev_);
    while (bdat_remaining_ > 0 && evbuffer_get_length(in) > 0) {
        iovec vec[16];
        int n = evbuffer_peek(in, -1, nullptr, vec, 16);
        if (n > 16) n = 16;
        size_t used = 0;
        for (int i = 0; i < n && bdat_remaining_ > 0; ++i) {
            size_t take = std::min<uint64_t>(vec[i].iov_len, bdat_remaining_);
            if (chunks_ && bdat_error_.empty())
                chunks_->feed(std::string_view(static_cast<const char*>(vec[i].iov_base), take), decoded_);
            used += take;
            bdat_remaining_ -= take;
        }
        evbuffer_drain(in, used);
        if (chunks_ && chunks_->error() != smtp::DataError::None) decoded_.clear();
        if (body_ && decoded_.size() >= kHandOff) {
            body_->append(decoded_);
            decoded_.clear();
        }
    }
    if (bdat_remaining_ > 0) return;
    input_ = Input::Command;
    set_timeout(server_.settings().timeout);
    if (!bdat_error_.empty()) {
        // A refused chunk ends the transaction's content (RFC 3030 2).
        if (chunks_) bdat_failed_ = true;
        abandon_body();
        chunks_.reset();
        decoded_.clear();
        error_reply(bdat_error_);
        return;
    }
    if (body_ && !decoded_.empty()) {
        body_->append(decoded_);
        decoded_.clear();
    }
    if (!bdat_last_) {
        if (chunks_->error() == smtp::DataError::TooBig) {
            // Stop early: no point in reading more of a message we refuse.
            bdat_failed_ = true;
            abandon_body();
            chunks_.reset();
            error_reply("552 5.3.4 Error: message file too big");
            return;
        }
        reply_line("250 2.0.0 Ok: " + std::to_string(chunks_->size()) + " octets received");
        return;
    }
    chunks_->finish();
    end_of_message(chunks_->error());
}

void Session::end_of_message(smtp::DataError error) {
    input_ = Input::Command;
    last_command_ = "END-OF-MESSAGE";
    set_timeout(server_.settings().timeout);
    const std::string id = queue_id_;
    if (error != smtp::DataError::None) {
        std::string r;
        switch (error) {
        case smtp::DataError::BareLf: r = "550 5.5.2 Error: bare <LF> received"; break;
        case smtp::DataError::BareCr: r = "550 5.5.2 Error: bare <CR> received"; break;
        case smtp::DataError::TooBig: r = "552 5.3.4 Error: message file too big"; break;
        case smtp::DataError::LineTooLong: r = "500 5.5.0 Error: message line too long"; break;
        case smtp::DataError::None: break;
        }
        log::info("%s: reject: END-OF-MESSAGE from %s: %s; %s", id.c_str(), peer_.c_str(), r.c_str(),
                  reject_context().c_str());
        reset_transaction();
        error_reply(r);
        return;
    }
    Status written = body_->finish();
    if (!written) {
        log::error("%s: %s", id.c_str(), written.message().c_str());
        reset_transaction();
        reply(451, "4.3.0", "Error: queue file write error");
        return;
    }
    queue::Message message;
    auto& env = message.envelope;
    env.id = id;
    env.sender = mail_.sender.address;
    env.arrival_us = sys::now_us();
    env.size = body_->size();
    env.client_name = name_;
    env.client_addr = addr_;
    env.helo = helo_;
    env.protocol = protocol_name();
    env.body_type = std::string(smtp::body_type_name(mail_.body));
    env.smtputf8 = mail_.smtputf8;
    env.dsn_ret = mail_.ret;
    env.dsn_envid = mail_.envid;
    message.recipients = rcpts_;
    if (body_->in_memory()) message.small_body = body_->take_in_memory();
    if (!body_->message_id().empty()) log::info("%s: message-id=%s", id.c_str(), body_->message_id().c_str());
    uint64_t size = env.size;
    size_t nrcpt = rcpts_.size();
    Fd fd = std::move(body_fd_);  // none for a body in memory
    queue_id_.clear();  // the Committer owns the body now (it unlinks it on failure)
    body_.reset();
    reset_transaction();
    // No reply to anything pipelined until the 250: process() leaves the
    // input alone while Waiting (reading stays on: no epoll_ctl per message).
    input_ = Input::Waiting;
    std::weak_ptr<Session> weak = weak_from_this();
    server_.committer().submit(std::move(message), std::move(fd),
                               [weak, id, size, nrcpt](const Status& status) {
        if (auto self = weak.lock()) self->committed(status, id, size, nrcpt);
    });
}

void Session::committed(const Status& status, const std::string& queue_id, uint64_t, size_t) {
    if (!bev_ || input_ != Input::Waiting) return;
    input_ = Input::Command;
    if (status) {
        reply_line("250 2.0.0 Ok: queued as " + queue_id);
    } else {
        log::error("%s: cannot queue message: %s", queue_id.c_str(), status.message().c_str());
        reply(451, "4.3.0", "Error: queue file write error");
    }
    process();
    if (bev_ && plain_fd_ >= 0) plain_reader_->resume();  // input kept during the commit is consumed
}

}  // namespace tern::smtpd
