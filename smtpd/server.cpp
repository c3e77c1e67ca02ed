// smtpd's per-process state and listeners (see server.hpp).
#include "smtpd/server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lib/log/log.hpp"
#include "lib/sys/clock.hpp"
#include "lib/sys/files.hpp"
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
    auto exceptions = net::NetworkList::parse(config.get_list("smtpd_rate_limit_exceptions"));
    if (!exceptions) return Error{"smtpd_rate_limit_exceptions: " + exceptions.message()};
    s.limits.exceptions = std::move(*exceptions);
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
    // Body files are created ahead by a helper thread, not on the loop
    // (lib/queue/spare.hpp): enough for a burst of new transactions.
    if (auto st = server->store_->keep_spare_bodies(kSpareBodies); !st)
        log::warning("spare body files: %s; creating each on the event loop", st.message().c_str());
    server->committer_ = std::make_unique<queue::Committer>(base, *server->store_);
    // qmgr reads new mail from LMDB: woken when a logged batch got there
    // (the 250 went out before, after the commit log's sync).
    server->committer_->on_stored(
        [srv = server.get()](std::vector<std::string> ids) { srv->wake_.poke(std::move(ids)); });

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
    if (server->store_->recovered_at_open() > 0) server->wake_.poke();  // a dead smtpd's logged mail
    auto submission = Submission::create(base, config, s.mode != Mode::Smtp);
    if (!submission) return submission.error();
    server->submission_ = std::move(*submission);
    Server* raw = server.get();
    server->reaper_ = event::timer(base, [raw](short) { raw->reap(); });
    return server;
}

Server::~Server() {
    stop_accepting();
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
        if (auto s = sys::set_nonblocking(fd.get()); !s) return Error{"listening socket: " + s.message()};
        int raw = fd.get();
        listen_fds_.push_back(std::move(fd));
        accept_watches_.emplace_back(base_, raw, EV_READ | EV_PERSIST, [this, raw](short) { accept_from(raw); });
        accept_watches_.back().add();
    }
    return {};
}

void Server::stop_accepting() {
    accept_watches_.clear();
    listen_fds_.clear();
}

void Server::accept_from(int listener) {
    // Every smtpd process of the service shares this socket and is woken for
    // a new connection; the first to call accept4 gets it, the others see
    // EAGAIN.  A busy process is not in epoll_wait and so takes fewer: the
    // load spreads by itself (docs/performance.md compares this with one
    // SO_REUSEPORT socket per process).  A few per wake-up, so one flood of
    // connections cannot starve the sessions already running.
    for (int i = 0; i < kAcceptsPerWake; ++i) {
        sockaddr_storage peer{};
        socklen_t len = sizeof peer;
        int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) return;
            // EMFILE and friends: logged; the watch stays, the kernel keeps the connection queued.
            log::warning("accept: %s", std::strerror(errno));
            return;
        }
        // TCP_NODELAY comes from the listener (net::listen_tcp).
        auto session = std::make_shared<Session>(*this, fd, reinterpret_cast<sockaddr*>(&peer), settings_.mode == Mode::Smtps);
        Session* key = session.get();
        sessions_.emplace(key, std::move(session));
        key->start();
    }
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
