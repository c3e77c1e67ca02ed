// The user-session service socket: see server.hpp.
#include "user-session/server.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cctype>

#include "lib/auth/login_ticket.hpp"
#include "lib/log/log.hpp"
#include "lib/usersession/backend_args.hpp"
#include "lib/sys/privileges.hpp"
#include "user-session/backend.hpp"

namespace tern::usersession {
namespace {

constexpr uint32_t kMaxRequest = 16 * 1024;

// A name from a peer made safe for one log line or an argv element.
std::string loggable(std::string_view s) {
    std::string out;
    for (unsigned char c : s.substr(0, 128)) out += (c <= 0x20 || c >= 0x7f || c == '>' || c == '<') ? '?' : char(c);
    return out;
}

// An IMAP tag is an astring without '+' (RFC 9051 9); anything else is refused.
bool valid_tag(std::string_view tag) {
    if (tag.empty() || tag.size() > 64) return false;
    for (unsigned char c : tag)
        if (c <= 0x20 || c >= 0x7f || c == '(' || c == ')' || c == '{' || c == '%' || c == '*' || c == '"' ||
            c == '\\' || c == '+')
            return false;
    return true;
}

bool valid_ip(std::string_view ip) {
    if (ip.empty() || ip.size() > 64) return false;
    for (unsigned char c : ip)
        if (!(std::isxdigit(c) || c == '.' || c == ':')) return false;
    return true;
}

std::string wait_status(int status) {
    if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

}  // namespace

Settings Settings::from(const config::Config& c) {
    Settings s;
    for (const auto& name : c.get_list("user_session_peer_users")) {
        auto ids = sys::lookup_user(name);
        if (ids) s.peer_uids.insert(ids->uid);
        else log::warning("user_session_peer_users: %s", ids.message().c_str());
    }
    s.first_valid_uid = c.get_int("auth_first_valid_uid");
    s.auth_socket = c.get("auth_socket");
    s.daemon_directory = c.get("daemon_directory");
    s.config_directory = c.get("config_directory");
    std::string target = c.get("log_target");
    if (!target.empty() && target[0] == '/') s.log_file = target;
    return s;
}

Server::Server(event_base* base, std::vector<Fd> listeners, Settings settings)
    : settings_(std::move(settings)),
      requests_(base, std::move(listeners),
                ipc::PeerPolicy{"user-session socket", "user_session_peer_users", settings_.peer_uids}, kMaxRequest,
                [this](uint64_t conn, ipc::Message& m) { on_message(conn, m); },
                [this](uint64_t conn) { forget_connection(conn); }) {
    sigchld_ = event::signal_watch(base, SIGCHLD, [this](short) { reap(); });
    sigchld_.add();
}

// The connection is closing: a backend it started is still reaped and
// logged, but no longer reported.
void Server::forget_connection(uint64_t conn) {
    auto* c = requests_.find(conn);
    if (c && c->state.backend) {
        auto b = backends_.find(c->state.backend);
        if (b != backends_.end()) b->second.conn = 0;
    }
}

void Server::on_message(uint64_t conn, ipc::Message& m) {
    if (m.type() == "backend-request" && requests_[conn].state.backend == 0) {
        serve(conn, m);
        return;
    }
    log::warning("unexpected \"%s\" message from pid %d; closing the connection", loggable(m.type()).c_str(),
                 int(requests_[conn].pid));
    requests_.drop(conn);
}

void Server::refuse(uint64_t conn, const std::string& service, const std::string& reason) {
    auto& c = requests_[conn];
    log::warning("backend refused: service=%s, peer=uid %d pid %d, reason=%s", loggable(service).c_str(), int(c.uid),
                 int(c.pid), reason.c_str());
    ipc::Message out("backend-refused");
    out.add("reason", reason);
    c.channel->send(out);
}

void Server::serve(uint64_t conn, ipc::Message& m) {
    auto& c = requests_[conn];
    std::string protocol = m.get_or("protocol", "");
    if (protocol != "imap" && protocol != "pop3") return refuse(conn, protocol, "unknown protocol");
    Fd client = m.take_fd(0);
    if (!client) return refuse(conn, protocol, "no client socket came with the request");
    std::string rip = m.get_or("rip", "");
    std::string tag = m.get_or("tag", "");
    if (!valid_ip(rip)) return refuse(conn, protocol, "invalid client address");
    if (protocol == "imap" && !valid_tag(tag)) return refuse(conn, protocol, "invalid IMAP tag");

    // Whom to become: the auth daemon's word, for this peer's uid only.
    auto account = auth::redeem_login_ticket(settings_.auth_socket, m.get_or("ticket", ""), protocol, c.uid);
    if (!account) return refuse(conn, protocol, account.message());
    uid_t uid = *account->uid;
    if (uid == 0 || static_cast<long long>(uid) < settings_.first_valid_uid)
        return refuse(conn, protocol,
                      "uid " + std::to_string(uid) + " is below auth_first_valid_uid (" +
                          std::to_string(settings_.first_valid_uid) + ")");
    auto ids = sys::lookup_user(account->user);
    if (!ids) return refuse(conn, protocol, ids.message());
    if (ids->uid != uid || ids->gid != *account->gid)
        return refuse(conn, protocol, "user " + loggable(account->user) + " changed uid/gid since the login");
    if (account->mail.empty() || account->mail[0] != '/') return refuse(conn, protocol, "no absolute Maildir path");

    BackendSpec spec;
    spec.user = *ids;
    spec.program = settings_.daemon_directory + "/" + (protocol == "imap" ? "imapd" : "pop3d");
    spec.args = {"-c", settings_.config_directory, "-s", protocol + "-backend"};
    if (!settings_.log_file.empty()) {
        spec.log_file = settings_.log_file;
        spec.args.insert(spec.args.end(), {"-o", "log_target=stderr"});
    }
    BackendArgs args{account->user, account->mail, rip, protocol == "imap" ? tag : "", m.get_or("tls", "0") == "1"};
    for (auto& a : args.to_args()) spec.args.push_back(std::move(a));
    spec.client = std::move(client);
    auto pid = start_backend(std::move(spec));
    if (!pid) return refuse(conn, protocol, "cannot start the backend: " + pid.message());
    c.state.backend = *pid;
    backends_[*pid] = Backend{conn, account->user};
    log::info("backend started: user=<%s>, uid=%d, service=%s, pid=%d, rip=%s", loggable(account->user).c_str(), int(uid),
              protocol.c_str(), int(*pid), rip.c_str());
    ipc::Message out("backend-started");
    out.add_int("pid", *pid);
    c.channel->send(out);
}

void Server::reap() {
    for (int i = 0; i < 1024; ++i) {
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid <= 0) return;
        auto it = backends_.find(pid);
        if (it == backends_.end()) continue;  // a child that failed before exec (already reported)
        uint64_t conn = it->second.conn;
        std::string user = it->second.user;
        backends_.erase(it);
        std::string text = wait_status(status);
        bool abnormal = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        auto* c = requests_.find(conn);
        if (abnormal) log::warning("backend exited: user=<%s>, pid=%d, status=%s", loggable(user).c_str(), int(pid), text.c_str());
        else log::info("backend exited: user=<%s>, pid=%d, status=%s", loggable(user).c_str(), int(pid), text.c_str());
        if (conn == 0 || !c || !c->channel || c->channel->closed()) continue;
        ipc::Message out("backend-exit");
        out.add_int("pid", pid);
        out.add("status", text);
        out.add("abnormal", abnormal ? "1" : "0");
        c->channel->send(out);
    }
}

}  // namespace tern::usersession
