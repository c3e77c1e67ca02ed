// The unit tests' DNS server (see dns_test_server.hpp).
#include "tests/unit/lib/dns_test_server.hpp"

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>
#include <stdexcept>

#include "lib/dns/message.hpp"

namespace tern::test {

namespace {

std::string owner_of(const ldns_rr* rr) {
    char* s = ldns_rdf2str(ldns_rr_owner(rr));
    std::string out = dns::normalize_name(s ? s : "");
    std::free(s);
    return out;
}

}  // namespace

DnsTestServer::DnsTestServer(event_base* base) : base_(base) {
    udp_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    tcp_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // The same port for UDP and TCP: try a few kernel-chosen UDP ports.
    for (int i = 0; i < 50 && port_ == 0; ++i) {
        Fd u(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        sa.sin_port = 0;
        if (::bind(u.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) continue;
        socklen_t len = sizeof sa;
        ::getsockname(u.get(), reinterpret_cast<sockaddr*>(&sa), &len);
        int one = 1;
        ::setsockopt(tcp_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(tcp_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) continue;
        udp_ = std::move(u);
        port_ = ntohs(sa.sin_port);
    }
    if (port_ == 0 || ::listen(tcp_.get(), 16) != 0) throw std::runtime_error("DnsTestServer: cannot bind");
    udp_watch_ = event::Watch(base_, udp_.get(), EV_READ | EV_PERSIST, [this](short) { on_udp(); });
    udp_watch_.add();
    tcp_watch_ = event::Watch(base_, tcp_.get(), EV_READ | EV_PERSIST, [this](short) { on_accept(); });
    tcp_watch_.add();
}

void DnsTestServer::add(const std::string& zone_line) {
    ldns_rr* rr = nullptr;
    if (ldns_rr_new_frm_str(&rr, zone_line.c_str(), 300, nullptr, nullptr) != LDNS_STATUS_OK)
        throw std::runtime_error("DnsTestServer: bad zone line: " + zone_line);
    ldns_rr_free(rr);
    lines_.push_back(zone_line);
}

std::string DnsTestServer::answer(const std::string& query, bool over_tcp) {
    ldns_pkt* q = nullptr;
    if (ldns_wire2pkt(&q, reinterpret_cast<const uint8_t*>(query.data()), query.size()) != LDNS_STATUS_OK) return {};
    const ldns_rr* question = ldns_rr_list_rr(ldns_pkt_question(q), 0);
    std::string name = owner_of(question);
    ldns_rr_type type = ldns_rr_get_type(question);

    ldns_pkt* r = ldns_pkt_new();
    ldns_pkt_set_id(r, ldns_pkt_id(q));
    ldns_pkt_set_qr(r, true);
    ldns_pkt_set_rd(r, true);
    ldns_pkt_set_ra(r, true);
    ldns_pkt_set_ad(r, authenticated);
    ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION, ldns_rr_clone(question));
    bool known = false;
    if (servfail.count(name)) {
        ldns_pkt_set_rcode(r, LDNS_RCODE_SERVFAIL);
    } else if (truncate.count(name) && !over_tcp) {
        ldns_pkt_set_tc(r, true);
    } else {
        std::string current = name;
        for (int hop = 0; hop < 20; ++hop) {
            std::string next;
            for (const auto& line : lines_) {
                ldns_rr* rr = nullptr;
                ldns_rr_new_frm_str(&rr, line.c_str(), 300, nullptr, nullptr);
                if (owner_of(rr) != current) {
                    ldns_rr_free(rr);
                    continue;
                }
                known = true;
                ldns_rr_type t = ldns_rr_get_type(rr);
                if (t == type) {
                    ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, rr);
                } else if (t == LDNS_RR_TYPE_CNAME) {
                    char* target = ldns_rdf2str(ldns_rr_rdf(rr, 0));
                    next = dns::normalize_name(target);
                    std::free(target);
                    ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, rr);
                } else {
                    ldns_rr_free(rr);
                }
            }
            if (next.empty() || partial_cname.count(current)) break;
            current = next;
            known = false;
        }
        if (!known) ldns_pkt_set_rcode(r, LDNS_RCODE_NXDOMAIN);
    }
    uint8_t* wire = nullptr;
    size_t size = 0;
    ldns_pkt2wire(&wire, r, &size);
    std::string out(reinterpret_cast<const char*>(wire), size);
    std::free(wire);
    ldns_pkt_free(r);
    ldns_pkt_free(q);
    return out;
}

void DnsTestServer::on_udp() {
    char buf[4096];
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(udp_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0) return;
    ++udp_queries;
    std::string query(buf, static_cast<size_t>(n));
    ldns_pkt* q = nullptr;
    if (ldns_wire2pkt(&q, reinterpret_cast<const uint8_t*>(buf), static_cast<size_t>(n)) != LDNS_STATUS_OK) return;
    std::string name = owner_of(ldns_rr_list_rr(ldns_pkt_question(q), 0));
    ldns_pkt_free(q);
    if (drop.count(name)) return;
    if (drop_once.erase(name)) return;
    std::string reply = answer(query, false);
    ::sendto(udp_.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
}

void DnsTestServer::on_accept() {
    int fd = ::accept4(tcp_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    ++tcp_queries;
    auto buffer = std::make_shared<std::string>();
    clients_.emplace_back(Fd(fd), event::Watch());
    clients_.back().second = event::Watch(base_, fd, EV_READ | EV_PERSIST, [this, fd, buffer](short) {
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        buffer->append(buf, static_cast<size_t>(n));
        if (buffer->size() < 2) return;
        size_t len = (static_cast<uint8_t>((*buffer)[0]) << 8) | static_cast<uint8_t>((*buffer)[1]);
        if (buffer->size() < len + 2) return;
        std::string reply = answer(buffer->substr(2, len), true);
        buffer->erase(0, len + 2);
        std::string framed;
        framed.push_back(static_cast<char>(reply.size() >> 8));
        framed.push_back(static_cast<char>(reply.size() & 0xff));
        framed += reply;
        (void)::send(fd, framed.data(), framed.size(), MSG_NOSIGNAL);
    });
    clients_.back().second.add();
}

}  // namespace tern::test
