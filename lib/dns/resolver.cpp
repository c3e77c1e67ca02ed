// The asynchronous stub resolver (see resolver.hpp).
#include "lib/dns/resolver.hpp"

#include <sys/random.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "lib/net/address.hpp"
#include "lib/sys/files.hpp"

namespace tern::dns {

namespace {

constexpr int kMaxCnameQueries = 8;

uint16_t random_id() {
    uint16_t id = 0;
    // Unpredictable IDs (and the kernel's random source port) make a blind
    // spoofed answer unlikely (RFC 5452).
    if (::getrandom(&id, sizeof id, 0) != sizeof id) id = static_cast<uint16_t>(std::rand());
    return id;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

}  // namespace

struct Resolver::Query {
    uint64_t id = 0;
    std::string name;
    Type type = Type::A;
    Callback callback;
    uint16_t wire_id = 0;
    std::string wire;
    size_t server = 0;
    int tries_left = 0;
    int cname_queries = 0;
    Fd fd;
    event::Watch watch;
    bool tcp = false;
    std::chrono::steady_clock::time_point try_started;  // UDP: when this try's first datagram left
    std::chrono::milliseconds resend_after{0};           // UDP: the wait before the next copy
    std::string tcp_out;  // what is left to write
    std::string tcp_in;   // what was read so far
    bool chain_authenticated = true;  // every answer along a CNAME chain had AD
    Answer answer;        // the result, once finished
};

Result<Server> parse_server(std::string_view text) {
    text = trim(text);
    std::string host(text);
    int port = 53;
    if (!text.empty() && text.front() == '[') {
        auto hp = net::parse_host_port(text);
        if (!hp) return make_error("bad DNS server address '" + std::string(text) + "': " + hp.message());
        host = hp->host;
        port = hp->port;
    } else if (std::count(text.begin(), text.end(), ':') == 1) {
        auto hp = net::parse_host_port(text);
        if (!hp) return make_error("bad DNS server address '" + std::string(text) + "': " + hp.message());
        host = hp->host;
        port = hp->port;
    }
    auto ss = net::parse_ip(host, port);
    if (!ss) return make_error("bad DNS server address '" + std::string(text) + "': not a numeric IP address");
    Server s;
    s.address = *ss;
    s.length = ss->ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    s.text = net::format_host_port(host, port);
    return s;
}

std::vector<Server> servers_from_resolv_conf(std::string_view text) {
    std::vector<Server> out;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        line = trim(line);
        if (line.substr(0, 10) != "nameserver" || line.size() < 11 || (line[10] != ' ' && line[10] != '\t')) continue;
        std::string_view value = trim(line.substr(11));
        value = value.substr(0, value.find_first_of(" \t#;"));
        // A scoped IPv6 address (fe80::1%eth0) is not usable here: skip it.
        if (value.find('%') != std::string_view::npos || value.find(':') != std::string_view::npos) {
            auto s = net::parse_ip(value, 53);
            if (!s) continue;
            Server server;
            server.address = *s;
            server.length = s->ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
            server.text = net::format_host_port(std::string(value), 53);
            out.push_back(server);
            continue;
        }
        if (auto s = parse_server(value)) out.push_back(*s);
    }
    return out;
}

Result<ResolverSettings> settings_from(const config::Config& config) {
    ResolverSettings s;
    for (const auto& item : config.get_list("dns_resolvers")) {
        auto server = parse_server(item);
        if (!server) return make_error("dns_resolvers: " + server.message());
        s.servers.push_back(*server);
    }
    if (s.servers.empty()) {
        auto text = sys::read_file("/etc/resolv.conf");
        if (text) s.servers = servers_from_resolv_conf(*text);
    }
    if (s.servers.empty()) s.servers.push_back(*parse_server("127.0.0.1"));
    s.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config.get_duration("dns_timeout"));
    if (s.timeout.count() <= 0) s.timeout = std::chrono::milliseconds(1000);
    return s;
}

Resolver::Resolver(event_base* base, ResolverSettings settings) : base_(base), settings_(std::move(settings)) {
    if (settings_.attempts < 1) settings_.attempts = 1;
    reaper_ = event::timer(base_, [this](short) {
        retired_.clear();
        std::vector<std::unique_ptr<Query>> done;
        done.swap(done_);
        for (auto& q : done) {
            q->watch = event::Watch();
            q->fd.reset();
            if (q->callback) q->callback(std::move(q->answer));
        }
    });
}

Resolver::~Resolver() = default;

Resolver::Query* Resolver::find(uint64_t id) {
    auto it = queries_.find(id);
    return it == queries_.end() ? nullptr : it->second.get();
}

void Resolver::lookup(std::string name, Type type, Callback callback) {
    auto q = std::make_unique<Query>();
    q->id = next_id_++;
    q->name = normalize_name(name);
    q->type = type;
    q->callback = std::move(callback);
    Query& ref = *q;
    queries_.emplace(q->id, std::move(q));
    start(ref);
}

void Resolver::start(Query& q) {
    q.wire_id = random_id();
    auto wire = build_query(q.name, q.type, q.wire_id);
    if (!wire || settings_.servers.empty()) {
        Answer a;
        a.status = AnswerStatus::NxDomain;
        a.error = wire ? "no DNS server configured" : wire.message();
        if (wire) a.status = AnswerStatus::TempFail;
        finish(q, std::move(a));
        return;
    }
    q.wire = std::move(*wire);
    q.server = 0;
    q.tries_left = settings_.attempts * static_cast<int>(settings_.servers.size());
    send_udp(q);
}

void Resolver::retire(Query& q) {
    // The watch may be the caller: stop it now, free it from the loop.
    if (q.watch) {
        q.watch.del();
        retired_.push_back(std::move(q.watch));
        reaper_.activate();
    }
    q.watch = event::Watch();
    q.fd.reset();
}

void Resolver::send_udp(Query& q) {
    q.tcp = false;
    retire(q);
    const Server& server = settings_.servers[q.server];
    q.fd.reset(::socket(server.address.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!q.fd || ::connect(q.fd.get(), reinterpret_cast<const sockaddr*>(&server.address), server.length) != 0 ||
        ::send(q.fd.get(), q.wire.data(), q.wire.size(), 0) < 0) {
        next_try(q, server.text + ": " + std::strerror(errno));
        return;
    }
    uint64_t id = q.id;
    q.try_started = std::chrono::steady_clock::now();
    q.resend_after = std::min(settings_.retransmit, settings_.timeout);
    q.watch = event::Watch(base_, q.fd.get(), EV_READ | EV_PERSIST, [this, id](short what) { on_udp(id, what); });
    q.watch.add(q.resend_after);
}

bool Resolver::resend_udp(Query& q) {
    auto left = settings_.timeout - (std::chrono::steady_clock::now() - q.try_started);
    if (left <= std::chrono::milliseconds(1)) return false;
    // Same socket, same ID: an answer to either copy is taken.
    if (::send(q.fd.get(), q.wire.data(), q.wire.size(), 0) < 0) return false;
    q.resend_after = std::min(q.resend_after * 2, std::chrono::ceil<std::chrono::milliseconds>(left));
    q.watch.add(q.resend_after);
    return true;
}

void Resolver::on_udp(uint64_t id, short what) {
    Query* q = find(id);
    if (!q) return;
    if (what & EV_TIMEOUT) {
        if (!resend_udp(*q)) next_try(*q, "timeout from " + settings_.servers[q->server].text);
        return;
    }
    char buf[65536];
    for (int i = 0; i < 16; ++i) {
        ssize_t n = ::recv(q->fd.get(), buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            next_try(*q, settings_.servers[q->server].text + ": " + std::strerror(errno));  // ICMP refused
            return;
        }
        auto answer = parse_answer(std::string_view(buf, static_cast<size_t>(n)), q->wire_id, q->name, q->type);
        if (!answer) continue;  // not ours or garbage: keep waiting until the timeout
        if (answer->truncated) {
            send_tcp(*q);
            return;
        }
        got_answer(*q, std::move(*answer));
        return;
    }
}

void Resolver::send_tcp(Query& q) {
    q.tcp = true;
    retire(q);
    const Server& server = settings_.servers[q.server];
    q.fd.reset(::socket(server.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!q.fd || (::connect(q.fd.get(), reinterpret_cast<const sockaddr*>(&server.address), server.length) != 0 &&
                  errno != EINPROGRESS)) {
        next_try(q, server.text + " (TCP): " + std::strerror(errno));
        return;
    }
    q.tcp_out.clear();
    q.tcp_out.push_back(static_cast<char>(q.wire.size() >> 8));
    q.tcp_out.push_back(static_cast<char>(q.wire.size() & 0xff));
    q.tcp_out += q.wire;
    q.tcp_in.clear();
    uint64_t id = q.id;
    q.watch = event::Watch(base_, q.fd.get(), EV_WRITE | EV_READ | EV_PERSIST, [this, id](short what) { on_tcp(id, what); });
    q.watch.add(settings_.timeout);
}

void Resolver::on_tcp(uint64_t id, short what) {
    Query* q = find(id);
    if (!q) return;
    const std::string& server = settings_.servers[q->server].text;
    if (what & EV_TIMEOUT) {
        next_try(*q, "timeout from " + server + " (TCP)");
        return;
    }
    if ((what & EV_WRITE) && !q->tcp_out.empty()) {
        ssize_t n = ::send(q->fd.get(), q->tcp_out.data(), q->tcp_out.size(), MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            next_try(*q, server + " (TCP): " + std::strerror(errno));
            return;
        }
        if (n > 0) q->tcp_out.erase(0, static_cast<size_t>(n));
        if (q->tcp_out.empty()) {
            uint64_t qid = q->id;
            q->watch.del();
            retired_.push_back(std::move(q->watch));
            reaper_.activate();
            q->watch = event::Watch(base_, q->fd.get(), EV_READ | EV_PERSIST, [this, qid](short w) { on_tcp(qid, w); });
            q->watch.add(settings_.timeout);
        }
        return;
    }
    if (!(what & EV_READ)) return;
    char buf[16384];
    ssize_t n = ::recv(q->fd.get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        next_try(*q, server + " (TCP): " + (n == 0 ? std::string("connection closed") : std::strerror(errno)));
        return;
    }
    q->tcp_in.append(buf, static_cast<size_t>(n));
    if (q->tcp_in.size() < 2) return;
    size_t length = (static_cast<uint8_t>(q->tcp_in[0]) << 8) | static_cast<uint8_t>(q->tcp_in[1]);
    if (q->tcp_in.size() < 2 + length) return;
    auto answer = parse_answer(std::string_view(q->tcp_in).substr(2, length), q->wire_id, q->name, q->type);
    if (!answer || answer->truncated) {
        next_try(*q, server + " (TCP): " + (answer ? std::string("truncated reply") : answer.message()));
        return;
    }
    got_answer(*q, std::move(*answer));
}

void Resolver::next_try(Query& q, const std::string& why) {
    retire(q);
    if (--q.tries_left <= 0) {
        Answer a;
        a.status = AnswerStatus::TempFail;
        a.error = why;
        finish(q, std::move(a));
        return;
    }
    q.server = (q.server + 1) % settings_.servers.size();
    send_udp(q);
}

void Resolver::got_answer(Query& q, Answer answer) {
    retire(q);
    q.chain_authenticated = q.chain_authenticated && answer.authenticated;
    if (answer.cname_unresolved && q.type != Type::CNAME) {
        // The server gave the chain's start only: ask for its end (bounded,
        // so a CNAME loop across servers cannot keep us busy).
        if (++q.cname_queries > kMaxCnameQueries) {
            answer.status = AnswerStatus::TempFail;
            answer.error = "CNAME chain too long";
            finish(q, std::move(answer));
            return;
        }
        q.name = answer.canonical;
        start(q);
        return;
    }
    answer.authenticated = q.chain_authenticated;
    finish(q, std::move(answer));
}

void Resolver::finish(Query& q, Answer answer) {
    retire(q);
    q.answer = std::move(answer);
    auto it = queries_.find(q.id);
    if (it == queries_.end()) return;
    done_.push_back(std::move(it->second));
    queries_.erase(it);
    reaper_.activate();
}

}  // namespace tern::dns
