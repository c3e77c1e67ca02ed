// The per-process state every smtpd session shares: settings from tern.conf,
// the queue store and its group committer, the TLS context, the shared rate
// limits, the recipient tables and the qmgr wake-up.  One Server per
// process; it owns the listeners and the sessions.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/config/config.hpp"
#include "lib/core/fd.hpp"
#include "lib/event/loop.hpp"
#include "lib/net/address.hpp"
#include "lib/policy/limits.hpp"
#include "lib/queue/committer.hpp"
#include "lib/queue/queue.hpp"
#include "lib/tables/recipient_check.hpp"
#include "lib/tls/context.hpp"
#include "smtpd/submission.hpp"
#include "smtpd/wake.hpp"

namespace tern::smtpd {

class Session;

enum class Mode { Smtp, Submission, Smtps };
enum class TlsLevel { None, May, Encrypt };

struct Settings {
    std::string myhostname;
    std::string mydomain;
    std::string banner;
    Mode mode = Mode::Smtp;
    TlsLevel tls_level = TlsLevel::May;
    uint64_t message_size_limit = 0;
    size_t line_length_limit = 2048;
    long long recipient_limit = 1000;
    long long soft_error_limit = 10;
    long long hard_error_limit = 20;
    std::chrono::seconds timeout{300};
    std::chrono::seconds data_timeout{600};
    bool vrfy = false;
    policy::Limits limits;

    static Result<Settings> from(const config::Config& config);
};

class Server {
public:
    // Opens everything the sessions need; errors are fatal start-up problems.
    static Result<std::unique_ptr<Server>> create(event_base* base, const config::Config& config);
    ~Server();

    // Starts accepting on every listening socket passed by master.
    Status listen(std::vector<Fd> listeners);
    // Graceful stop: no new connections; sessions finish what they are doing.
    void stop_accepting();
    size_t session_count() const { return sessions_.size(); }

    // Called by a session when it is done; the session is destroyed soon
    // (never inside its own callback).
    void finished(Session* session);

    event_base* base() const { return base_; }
    const Settings& settings() const { return settings_; }
    queue::Store& store() { return *store_; }
    queue::Committer& committer() { return *committer_; }
    SSL_CTX* tls() const { return tls_.get(); }
    policy::LimitsStore* limits() { return limits_.get(); }
    const net::NetworkList& mynetworks() const { return mynetworks_; }
    tables::RecipientCheck& recipients();
    Submission* submission() { return submission_.get(); }
    const Submission* submission() const { return submission_.get(); }

private:
    Server(event_base* base, Settings settings) : base_(base), settings_(std::move(settings)) {}
    static constexpr int kAcceptsPerWake = 4;
    static constexpr size_t kSpareBodies = 32;
    void accept_from(int listener);
    void reap();

    event_base* base_;
    Settings settings_;
    std::unique_ptr<queue::Store> store_;
    std::unique_ptr<queue::Committer> committer_;
    tls::Context tls_;
    std::unique_ptr<policy::LimitsStore> limits_;
    std::optional<tables::RecipientCheck> recipients_;
    int64_t recipients_checked_ = 0;  // monotonic ms of the last reload_if_changed
    net::NetworkList mynetworks_;
    QmgrWake wake_;
    std::unique_ptr<Submission> submission_;
    std::vector<Fd> listen_fds_;
    std::vector<event::Watch> accept_watches_;
    std::map<Session*, std::shared_ptr<Session>> sessions_;
    std::vector<std::shared_ptr<Session>> dead_;
    event::Watch reaper_;
};

}  // namespace tern::smtpd
