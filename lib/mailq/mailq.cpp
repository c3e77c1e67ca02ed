// mailq listing and qmgr pokes (see mailq.hpp).
#include "lib/mailq/mailq.hpp"

#include <cstdio>
#include <ctime>

#include "lib/config/services.hpp"
#include "lib/ipc/message.hpp"

namespace tern::mailq {

namespace {

std::string arrival_text(int64_t arrival_us) {
    time_t t = static_cast<time_t>(arrival_us / 1000000);
    struct tm tm {};
    localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%a %b %d %H:%M:%S", &tm);
    return buf;
}

// Queue contents come from the network: keep them to one printable line.
std::string printable(std::string_view s, size_t max = 300) {
    std::string out;
    for (unsigned char c : s) {
        if (out.size() >= max) break;
        out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
    }
    return out;
}

const char* state_name(queue::RecipientState s) {
    switch (s) {
    case queue::RecipientState::Pending: return "pending";
    case queue::RecipientState::Delivered: return "delivered";
    case queue::RecipientState::Bounced: return "bounced";
    }
    return "?";
}

std::string time_text(int64_t unix_s) {
    if (unix_s <= 0) return "-";
    return arrival_text(unix_s * 1000000);
}

}  // namespace

std::string format_listing(const std::vector<queue::Message>& messages, int64_t now) {
    if (messages.empty()) return "Mail queue is empty\n";
    std::string out = "-Queue ID-      --Size-- ----Arrival Time---- -Sender/Recipient-------\n";
    uint64_t total = 0;
    for (const auto& m : messages) {
        bool due = false;
        for (const auto& r : m.recipients)
            if (r.state == queue::RecipientState::Pending && r.next_try <= now) due = true;
        char mark = m.held ? '!' : due ? '*' : ' ';
        char line[512];
        std::snprintf(line, sizeof line, "%-14s%c %8llu %s  %s\n", m.envelope.id.c_str(), mark,
                      static_cast<unsigned long long>(m.envelope.size), arrival_text(m.envelope.arrival_us).c_str(),
                      m.envelope.sender.empty() ? "MAILER-DAEMON" : printable(m.envelope.sender).c_str());
        out += line;
        std::string indent(47, ' ');
        for (const auto& r : m.recipients) {
            if (r.state != queue::RecipientState::Pending) continue;
            if (!r.last_error.empty()) out += indent + "(" + printable(r.last_error) + ")\n";
            out += indent + printable(r.address) + "\n";
        }
        out += "\n";
        total += m.envelope.size;
    }
    out += "-- " + std::to_string((total + 1023) / 1024) + " Kbytes in " + std::to_string(messages.size()) +
           (messages.size() == 1 ? " Request.\n" : " Requests.\n");
    return out;
}

std::string format_details(const queue::Message& m, std::string_view header_text) {
    const auto& e = m.envelope;
    std::string out;
    auto field = [&](const char* name, const std::string& value) {
        if (!value.empty()) out += std::string(name) + ": " + printable(value) + "\n";
    };
    field("queue_id", e.id);
    out += "sender: <" + printable(e.sender) + ">\n";
    field("arrival_time", arrival_text(e.arrival_us));
    out += "size: " + std::to_string(e.size) + "\n";
    if (m.held) out += "held: yes\n";
    field("client", e.client_name.empty() && e.client_addr.empty() ? "" : e.client_name + "[" + e.client_addr + "]");
    field("helo", e.helo);
    field("protocol", e.protocol);
    field("auth_user", e.auth_user);
    field("body_type", e.body_type);
    if (e.smtputf8) out += "smtputf8: yes\n";
    field("dsn_ret", e.dsn_ret);
    field("dsn_envid", e.dsn_envid);
    if (e.is_bounce) out += "notification: yes\n";
    for (const auto& r : m.recipients) {
        out += "recipient: <" + printable(r.address) + "> " + state_name(r.state);
        if (!r.orcpt.empty()) out += " orcpt=" + printable(r.orcpt);
        out += " attempts=" + std::to_string(r.attempts);
        if (r.state == queue::RecipientState::Pending) out += " next_try=\"" + time_text(r.next_try) + "\"";
        if (!r.last_status.empty()) out += " dsn=" + printable(r.last_status, 20);
        if (!r.last_error.empty()) out += " (" + printable(r.last_error) + ")";
        out += "\n";
    }
    out += "\n";
    // Header lines as stored, each made printable but kept on its own line.
    size_t pos = 0;
    while (pos < header_text.size()) {
        size_t nl = header_text.find('\n', pos);
        if (nl == std::string_view::npos) nl = header_text.size();
        std::string_view line = header_text.substr(pos, nl - pos);
        std::string shown;
        for (unsigned char c : line) shown += (c < 0x20 && c != '\t') || c == 0x7f ? '?' : static_cast<char>(c);
        out += shown + "\n";
        pos = nl + 1;
    }
    return out;
}

std::string qmgr_socket_path(const config::Config& config) {
    auto services = config::load_services(config);
    if (services)
        for (const auto& s : *services)
            if (s.command == "qmgr" && s.type == config::ListenType::Unix && !s.listen.empty())
                return s.listen.front().path;
    return config.get("run_directory") + "/qmgr.sock";
}

Status poke_qmgr(const config::Config& config, std::string_view type, int timeout_ms) {
    auto sock = ipc::connect_unix(qmgr_socket_path(config));
    if (!sock) return sock.error();
    if (auto st = ipc::send_message(sock->get(), ipc::Message(type).add("reply", "yes")); !st) return st;
    auto reply = ipc::recv_message(sock->get(), timeout_ms);
    if (!reply) return reply.error();
    if (reply->type() != "ok") return make_error("qmgr: " + reply->get_or("reason", reply->type()));
    return {};
}

}  // namespace tern::mailq
