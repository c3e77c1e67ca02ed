// Next-hop selection through DNS (see nexthop.hpp).
#include "smtp-client/nexthop.hpp"

#include <algorithm>
#include <memory>
#include <random>

#include "lib/net/address.hpp"

namespace tern::smtpc {

namespace {

constexpr size_t kMaxTargets = 10;  // addresses tried per delivery (Postfix: smtp_mx_address_limit)

struct Host {
    explicit Host(std::string n) : name(std::move(n)) {}
    std::string name;
    std::vector<std::string> v4, v6;
    int pending = 0;
    bool temp_failure = false;
    bool secure = true;  // every address answer had AD
    TlsLevel level = TlsLevel::May;
    std::vector<dns::Record> tlsa;
    std::string tlsa_error;
    std::string error;  // "name=mx.example.org type=A: Host not found"
};

struct Lookup {
    dns::Resolver* resolver = nullptr;
    const Settings* settings = nullptr;
    Destination dest;
    TlsLevel level = TlsLevel::May;
    bool mx_secure = true;
    bool implicit = false;
    std::vector<Host> hosts;
    int pending = 0;
    std::function<void(NextHop)> done;
};

std::string name_error(const std::string& name, dns::Type type, const dns::Answer& a) {
    std::string what = a.status == dns::AnswerStatus::TempFail ? "Host not found, try again"
                       : a.status == dns::AnswerStatus::NoData ? "Host found but no data record of requested type"
                                                               : "Host not found";
    return "name=" + name + " type=" + std::string(dns::type_name(type)) + ": " + what;
}

void finish(const std::shared_ptr<Lookup>& l) {
    NextHop hop;
    int port = l->dest.port ? l->dest.port : l->settings->port;
    bool v6_first = l->settings->preference != AddressPreference::IPv4;
    bool any_temp = false;
    std::string last_error;
    for (const auto& h : l->hosts) {
        any_temp = any_temp || h.temp_failure;
        if (h.v4.empty() && h.v6.empty()) last_error = h.error;
        const auto& first = v6_first ? h.v6 : h.v4;
        const auto& second = v6_first ? h.v4 : h.v6;
        for (const auto* list : {&first, &second})
            for (const auto& ip : *list)
                if (hop.targets.size() < kMaxTargets) hop.targets.push_back({h.name, ip, port, h.level, h.tlsa, h.tlsa_error});
    }
    if (!hop.targets.empty()) {
        hop.ok = true;
    } else if (any_temp || !l->implicit) {
        // An MX host without an address may be a transient mistake in its
        // zone: defer, as for every other DNS trouble.
        hop.dsn = "4.4.3";
        hop.text = "Host or domain name not found. Name service error for " + last_error;
    } else {
        hop.outcome = delivery::Outcome::Bounced;
        hop.dsn = "5.4.4";
        hop.text = "Host or domain name not found. Name service error for " + last_error;
    }
    auto done = std::move(l->done);
    done(std::move(hop));
}

void tlsa_answer(const std::shared_ptr<Lookup>& l, size_t index, const dns::Answer& a) {
    Host& h = l->hosts[index];
    if (a.status == dns::AnswerStatus::Ok && a.authenticated) {
        // RFC 7672 3.1: only DANE-TA(2) and DANE-EE(3) apply to SMTP.
        for (const auto& r : a.records)
            if ((r.usage == 2 || r.usage == 3) && r.selector <= 1 && r.matching <= 2) h.tlsa.push_back(r);
        h.level = h.tlsa.empty() ? TlsLevel::Encrypt : TlsLevel::Dane;  // 3.1.3: unusable → mandatory TLS
    } else if (a.status == dns::AnswerStatus::TempFail) {
        h.level = TlsLevel::Dane;
        h.tlsa_error = a.error.empty() ? "temporary failure" : a.error;
    } else {
        h.level = TlsLevel::May;  // no TLSA records (or insecure ones): opportunistic
    }
    if (--l->pending == 0) finish(l);
}

// Every address is known: look up TLSA records where DANE applies.
void assemble(const std::shared_ptr<Lookup>& l) {
    int port = l->dest.port ? l->dest.port : l->settings->port;
    std::vector<size_t> dane;
    for (size_t i = 0; i < l->hosts.size(); ++i) {
        Host& h = l->hosts[i];
        h.level = l->level;
        if (l->level != TlsLevel::Dane) continue;
        h.level = TlsLevel::May;
        if ((h.v4.empty() && h.v6.empty()) || !l->mx_secure || !h.secure) continue;
        dane.push_back(i);
    }
    if (dane.empty()) {
        finish(l);
        return;
    }
    l->pending = static_cast<int>(dane.size());
    for (size_t i : dane) {
        std::string name = "_" + std::to_string(port) + "._tcp." + l->hosts[i].name;
        l->resolver->lookup(name, dns::Type::TLSA, [l, i](dns::Answer a) { tlsa_answer(l, i, a); });
    }
}

void host_answer(const std::shared_ptr<Lookup>& l, size_t index, dns::Type type, const dns::Answer& a) {
    Host& h = l->hosts[index];
    if (a.status != dns::AnswerStatus::TempFail) h.secure = h.secure && a.authenticated;
    if (a.status == dns::AnswerStatus::Ok) {
        for (const auto& r : a.records) (type == dns::Type::A ? h.v4 : h.v6).push_back(r.text);
    } else {
        if (a.status == dns::AnswerStatus::TempFail) h.temp_failure = true;
        if (h.error.empty() || a.status == dns::AnswerStatus::TempFail) h.error = name_error(h.name, type, a);
    }
    if (--l->pending == 0) assemble(l);
}

void lookup_addresses(const std::shared_ptr<Lookup>& l) {
    l->pending = 0;
    for (size_t i = 0; i < l->hosts.size(); ++i) {
        Host& h = l->hosts[i];
        // A literal address needs no lookup ("[192.0.2.1]:25").
        if (auto ip = net::parse_ip(h.name)) {
            h.secure = false;  // no DNS, no DNSSEC
            (ip->ss_family == AF_INET6 ? h.v6 : h.v4).push_back(net::ip_string(reinterpret_cast<sockaddr*>(&*ip)));
            continue;
        }
        l->pending += 2;
    }
    if (l->pending == 0) {
        assemble(l);
        return;
    }
    for (size_t i = 0; i < l->hosts.size(); ++i) {
        if (net::parse_ip(l->hosts[i].name)) continue;
        for (dns::Type t : {dns::Type::A, dns::Type::AAAA})
            l->resolver->lookup(l->hosts[i].name, t, [l, i, t](dns::Answer a) { host_answer(l, i, t, a); });
    }
}

void mx_answer(const std::shared_ptr<Lookup>& l, const dns::Answer& a) {
    const std::string& domain = l->dest.host;
    auto fail = [&](delivery::Outcome o, std::string dsn, std::string text) {
        NextHop hop;
        hop.outcome = o;
        hop.dsn = std::move(dsn);
        hop.text = std::move(text);
        auto done = std::move(l->done);
        done(std::move(hop));
    };
    switch (a.status) {
    case dns::AnswerStatus::TempFail:
        fail(delivery::Outcome::Deferred, "4.4.3",
             "Host or domain name not found. Name service error for " + name_error(domain, dns::Type::MX, a) +
                 (a.error.empty() ? "" : " (" + a.error + ")"));
        return;
    case dns::AnswerStatus::NxDomain:
        fail(delivery::Outcome::Bounced, "5.4.4",
             "Host or domain name not found. Name service error for " + name_error(domain, dns::Type::MX, a));
        return;
    case dns::AnswerStatus::NoData:
        l->mx_secure = a.authenticated;
        l->implicit = true;  // RFC 5321 5.1: the domain itself, preference 0
        l->hosts.push_back(Host(a.canonical.empty() ? domain : a.canonical));
        lookup_addresses(l);
        return;
    case dns::AnswerStatus::Ok: break;
    }
    l->mx_secure = a.authenticated;
    std::vector<dns::Record> mx = a.records;
    for (const auto& r : mx)
        if (r.text.empty()) {
            // RFC 7505 3: a null MX says the domain accepts no mail at all.
            fail(delivery::Outcome::Bounced, "5.1.10", "Domain " + domain + " does not accept mail (nullMX)");
            return;
        }
    static thread_local std::mt19937 rng{std::random_device{}()};
    std::shuffle(mx.begin(), mx.end(), rng);  // random among equal preferences ...
    std::stable_sort(mx.begin(), mx.end(),   // ... once sorted by preference
                     [](const dns::Record& x, const dns::Record& y) { return x.preference < y.preference; });
    for (const auto& r : mx) {
        bool seen = std::any_of(l->hosts.begin(), l->hosts.end(), [&](const Host& h) { return h.name == r.text; });
        if (!seen) l->hosts.push_back(Host(r.text));
    }
    lookup_addresses(l);
}

}  // namespace

Destination parse_destination(std::string_view nexthop) {
    Destination d;
    if (nexthop.size() > 2 && nexthop.front() == '[') {
        size_t close = nexthop.find(']');
        if (close != std::string_view::npos) {
            d.literal = true;
            d.host = std::string(nexthop.substr(1, close - 1));
            std::string_view rest = nexthop.substr(close + 1);
            if (rest.size() > 1 && rest[0] == ':') {
                int port = 0;
                for (char c : rest.substr(1)) port = (c >= '0' && c <= '9' && port < 65536) ? port * 10 + (c - '0') : 70000;
                if (port > 0 && port < 65536) d.port = port;
            }
            return d;
        }
    }
    d.host = dns::normalize_name(nexthop);
    return d;
}

void find_next_hop(dns::Resolver& resolver, const Settings& settings, const std::string& nexthop, TlsLevel level,
                   std::function<void(NextHop)> done) {
    auto l = std::make_shared<Lookup>();
    l->level = level;
    l->resolver = &resolver;
    l->settings = &settings;
    l->dest = parse_destination(nexthop);
    l->done = std::move(done);
    if (l->dest.literal) {
        l->implicit = true;
        l->hosts.push_back(Host(l->dest.host));
        lookup_addresses(l);
        return;
    }
    resolver.lookup(l->dest.host, dns::Type::MX, [l](dns::Answer a) { mx_answer(l, a); });
}

}  // namespace tern::smtpc
