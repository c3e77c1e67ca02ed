// smtpd's per-process state and listeners (see server.hpp).
#include "smtpd/server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log/log.hpp"
#include "lib/sys/clock.hpp"
#include "smtpd/session.hpp"

namespace tern::smtpd {

Result<Settings> Settings::from(const config::Config& config) {
    Settings s;
    s.myhostname = config.get("myhostname");
    if (s.myhostname.empty()) {
        char host[256] = {};
        gethostname(host, sizeof host - 1);
        s.myhostname = host;
    }
    s.mydomain = config.get("mydomain");
    s.banner = config.get("smtpd_banner");
    std::string mode = config.get("smtpd_mode");
    if (mode == "smtp") s.mode = Mode::Smtp;
    else if (mode == "submission") s.mode = Mode::Submission;
    else if (mode == "smtps") s.mode = Mode::Smtps;
    else return Error{"smtpd_mode: expected smtp, submission or smtps, got '" + mode + "'"};
    std::string level = config.get("smtpd_tls_security_level");
    if (level == "none") s.tls_level = TlsLevel::None;
    else if (level == "may") s.tls_level = TlsLevel::May;
    else if (level == "encrypt") s.tls_level = TlsLevel::Encrypt;
    else return Error{"smtpd_tls_security_level: expected none, may or encrypt, got '" + level + "'"};
    s.message_size_limit = config.get_size("message_size_limit");
    long long line = config.get_int("smtpd_line_length_limit");
    s.line_length_limit = line < 512 ? 512 : static_cast<size_t>(line);  // RFC 5321 4.5.3.1.4 minimum
    s.recipient_limit = config.get_int("smtpd_recipient_limit");
    s.soft_error_limit = config.get_int("smtpd_soft_error_limit");
    s.hard_error_limit = config.get_int("smtpd_hard_error_limit");
    s.timeout = config.get_duration("smtpd_timeout");
    s.data_timeout = config.get_duration("smtpd_data_timeout");
    s.vrfy = config.get_bool("smtpd_vrfy");
    s.limits.client_message_rate = config.get_int("smtpd_client_message_rate_limit");
    s.limits.sender_message_rate = config.get_int("smtpd_sender_message_rate_limit");
    s.limits.unit_seconds = config.get_duration("smtpd_rate_time_unit").count();
    if (s.limits.unit_seconds <= 0) s.limits.unit_seconds = 1;
    s.limits.block_seconds = config.get_duration("smtpd_block_time").count();
    s.limits.connection_limit = config.get_int("smtpd_client_connection_limit");
    return s;
}

Result<std::unique_ptr<Server>> Server::create(event_base* base, const config::Config& config) {
    auto settings = Settings::from(config);
    if (!settings) return settings.error();
    std::unique_ptr<Server> server(new Server(base, std::move(*settings)));
    const Settings& s = server->settings_;

    auto store = queue::Store::open(config.get("queue_directory"));
    if (!store) return Error{"queue: " + store.message()};
    server->store_ = std::move(*store);
    server->committer_ = std::make_unique<queue::Committer>(base, *server->store_);

    std::string cert = config.get("smtpd_tls_cert_file"), key = config.get("smtpd_tls_key_file");
    struct stat st;
    bool want_tls = s.mode == Mode::Smtps || s.tls_level != TlsLevel::None;
    if (want_tls && !cert.empty() && ::stat(cert.c_str(), &st) == 0) {
        auto ctx = tls::server_context(cert, key);
        if (!ctx) return Error{"TLS: " + ctx.message()};
        server->tls_ = std::move(*ctx);
    } else if (s.mode == Mode::Smtps || s.tls_level == TlsLevel::Encrypt) {
        return Error{"TLS is required (smtpd_mode/smtpd_tls_security_level) but smtpd_tls_cert_file '" + cert +
                     "' does not exist"};
    } else if (want_tls) {
        log::warning("no TLS certificate (%s): STARTTLS is not offered", cert.c_str());
    }

    auto limits = policy::LimitsStore::open(config.get("data_directory"));
    if (limits) {
        server->limits_ = std::move(*limits);
        (void)server->limits_->forget_process(getpid());
    } else {
        log::warning("rate limits and blocks are off: %s", limits.message().c_str());
    }

    auto recipients = tables::RecipientCheck::open(config);
    if (!recipients) return Error{"recipient tables: " + recipients.message()};
    server->recipients_.emplace(std::move(*recipients));

    auto networks = net::NetworkList::parse(config.get_list("mynetworks"));
    if (!networks) return Error{"mynetworks: " + networks.message()};
    server->mynetworks_ = std::move(*networks);

    server->wake_.init(base, config.get("run_directory") + "/qmgr.sock");
    auto submission = Submission::create(base, config, s.mode != Mode::Smtp);
    if (!submission) return submission.error();
    server->submission_ = std::move(*submission);
    Server* raw = server.get();
    server->reaper_ = event::timer(base, [raw](short) { raw->reap(); });
    server->resume_accept_ = event::timer(base, [raw](short) { raw->resume_accepting(); });
    return server;
}

Server::~Server() {
    listeners_.clear();
    sessions_.clear();
    dead_.clear();
    committer_.reset();  // finishes the batch in progress
}

tables::RecipientCheck& Server::recipients() {
    // Pick up edited tables without a reload, at most once a second.
    int64_t now = sys::monotonic_ms();
    if (now - recipients_checked_ >= 1000) {
        recipients_checked_ = now;
        (void)recipients_->reload_if_changed();
    }
    return *recipients_;
}

Status Server::listen(std::vector<Fd> listeners) {
    for (auto& fd : listeners) {
        int flags = fcntl(fd.get(), F_GETFL);
        fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK);
        evconnlistener* l = evconnlistener_new(base_, &Server::on_accept, this, LEV_OPT_CLOSE_ON_FREE, -1, fd.get());
        if (!l) return Error{"cannot listen on fd " + std::to_string(fd.get())};
        fd.release();
        evconnlistener_set_error_cb(l, &Server::on_accept_error);
        listeners_.emplace_back(l);
    }
    return {};
}

void Server::stop_accepting() {
    listeners_.clear();
    resume_accept_.del();
}

void Server::resume_accepting() {
    for (auto& l : listeners_) evconnlistener_enable(l.get());
}

void Server::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int, void* arg) {
    auto* self = static_cast<Server*>(arg);
    // One connection per wake-up: libevent would otherwise accept every
    // pending connection, and one smtpd process of several sharing the
    // socket would take them all.  Pausing for a millisecond lets
    // the other processes (all woken by the kernel) win the rest.
    for (auto& l : self->listeners_) evconnlistener_disable(l.get());
    if (!self->resume_accept_.pending()) self->resume_accept_.add(std::chrono::milliseconds(1));
    if (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    evutil_make_socket_nonblocking(fd);
    auto session = std::make_shared<Session>(*self, fd, addr, self->settings_.mode == Mode::Smtps);
    Session* key = session.get();
    self->sessions_.emplace(key, std::move(session));
    key->start();
}

void Server::on_accept_error(evconnlistener*, void*) {
    // EMFILE and friends: logged; libevent keeps the listener.
    log::warning("accept: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

void Server::finished(Session* session) {
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return;
    dead_.push_back(std::move(it->second));
    sessions_.erase(it);
    if (!reaper_.pending()) reaper_.add(std::chrono::milliseconds(1));
}

void Server::reap() { dead_.clear(); }

}  // namespace tern::smtpd
