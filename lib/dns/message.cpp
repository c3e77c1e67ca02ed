// DNS query building and answer parsing with ldns (see message.hpp).
#include "lib/dns/message.hpp"

#include <arpa/inet.h>
#include <ldns/ldns.h>

#include <cstdlib>
#include <memory>

namespace tern::dns {

namespace {

struct PktFree { void operator()(ldns_pkt* p) const { ldns_pkt_free(p); } };
struct RdfFree { void operator()(ldns_rdf* r) const { ldns_rdf_deep_free(r); } };
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;
using Rdf = std::unique_ptr<ldns_rdf, RdfFree>;

// A CNAME chain longer than this is a loop or an attack (BIND allows 16).
constexpr int kMaxChain = 16;

std::string dname_text(const ldns_rdf* rdf) {
    if (!rdf || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME) return {};
    char* s = ldns_rdf2str(rdf);
    if (!s) return {};
    std::string out = normalize_name(s);
    std::free(s);
    return out;
}

bool record_from(const ldns_rr* rr, Type type, Record& out) {
    out.type = type;
    out.ttl = ldns_rr_ttl(rr);
    size_t n = ldns_rr_rd_count(rr);
    auto rdf = [&](size_t i) { return i < n ? ldns_rr_rdf(rr, i) : nullptr; };
    switch (type) {
    case Type::A:
    case Type::AAAA: {
        const ldns_rdf* r = rdf(0);
        size_t want = type == Type::A ? 4 : 16;
        if (!r || ldns_rdf_size(r) != want) return false;
        char buf[INET6_ADDRSTRLEN];
        if (!inet_ntop(type == Type::A ? AF_INET : AF_INET6, ldns_rdf_data(r), buf, sizeof buf)) return false;
        out.text = buf;
        return true;
    }
    case Type::CNAME: {
        const ldns_rdf* r = rdf(0);
        if (!r || ldns_rdf_get_type(r) != LDNS_RDF_TYPE_DNAME) return false;
        out.text = dname_text(r);
        return true;
    }
    case Type::MX: {
        const ldns_rdf* p = rdf(0);
        const ldns_rdf* h = rdf(1);
        if (!p || !h || ldns_rdf_size(p) != 2 || ldns_rdf_get_type(h) != LDNS_RDF_TYPE_DNAME) return false;
        out.preference = ldns_rdf2native_int16(p);
        out.text = dname_text(h);
        return true;
    }
    case Type::TXT: {
        for (size_t i = 0; i < n; ++i) {
            const ldns_rdf* r = rdf(i);
            size_t size = ldns_rdf_size(r);
            const uint8_t* d = ldns_rdf_data(r);
            if (size < 1 || d[0] != size - 1) return false;
            out.text.append(reinterpret_cast<const char*>(d + 1), size - 1);
        }
        return true;
    }
    case Type::TLSA: {
        if (n != 4) return false;
        for (size_t i = 0; i < 3; ++i)
            if (ldns_rdf_size(rdf(i)) != 1) return false;
        out.usage = ldns_rdf2native_int8(rdf(0));
        out.selector = ldns_rdf2native_int8(rdf(1));
        out.matching = ldns_rdf2native_int8(rdf(2));
        out.data.assign(reinterpret_cast<const char*>(ldns_rdf_data(rdf(3))), ldns_rdf_size(rdf(3)));
        return true;
    }
    }
    return false;
}

}  // namespace

std::string_view type_name(Type type) {
    switch (type) {
    case Type::A: return "A";
    case Type::CNAME: return "CNAME";
    case Type::MX: return "MX";
    case Type::TXT: return "TXT";
    case Type::AAAA: return "AAAA";
    case Type::TLSA: return "TLSA";
    }
    return "?";
}

std::string normalize_name(std::string_view name) {
    std::string out(name);
    while (!out.empty() && out.back() == '.') out.pop_back();
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

Result<std::string> build_query(std::string_view name, Type type, uint16_t id) {
    std::string fqdn = normalize_name(name) + ".";
    if (fqdn.size() > 254) return make_error("domain name too long: " + std::string(name));
    Rdf owner(ldns_dname_new_frm_str(fqdn.c_str()));
    if (!owner) return make_error("not a valid domain name: " + std::string(name));
    Pkt pkt(ldns_pkt_query_new(owner.release(), static_cast<ldns_rr_type>(type), LDNS_RR_CLASS_IN, LDNS_RD));
    if (!pkt) return make_error("cannot build a DNS query");
    ldns_pkt_set_id(pkt.get(), id);
    // RFC 6840 5.7: AD in a query asks the resolver to report validation;
    // DO (RFC 3225) makes a validating resolver keep DNSSEC state.
    ldns_pkt_set_ad(pkt.get(), true);
    ldns_pkt_set_edns_udp_size(pkt.get(), 1232);
    ldns_pkt_set_edns_do(pkt.get(), true);
    uint8_t* wire = nullptr;
    size_t size = 0;
    if (ldns_pkt2wire(&wire, pkt.get(), &size) != LDNS_STATUS_OK || !wire) return make_error("cannot encode a DNS query");
    std::string out(reinterpret_cast<const char*>(wire), size);
    std::free(wire);
    return out;
}

Result<Answer> parse_answer(std::string_view wire, uint16_t id, std::string_view name, Type type) {
    ldns_pkt* raw = nullptr;
    if (ldns_wire2pkt(&raw, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()) != LDNS_STATUS_OK || !raw)
        return make_error("malformed DNS reply");
    Pkt pkt(raw);
    if (ldns_pkt_id(pkt.get()) != id || !ldns_pkt_qr(pkt.get())) return make_error("DNS reply for another query");
    const ldns_rr_list* question = ldns_pkt_question(pkt.get());
    std::string qname = normalize_name(name);
    if (!question || ldns_rr_list_rr_count(question) != 1) return make_error("DNS reply without the question");
    const ldns_rr* q = ldns_rr_list_rr(question, 0);
    if (dname_text(ldns_rr_owner(q)) != qname || ldns_rr_get_type(q) != static_cast<ldns_rr_type>(type))
        return make_error("DNS reply for another question");

    Answer a;
    a.authenticated = ldns_pkt_ad(pkt.get());
    a.truncated = ldns_pkt_tc(pkt.get());
    a.canonical = qname;
    if (a.truncated) return a;
    ldns_pkt_rcode rcode = ldns_pkt_get_rcode(pkt.get());
    if (rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN) {
        a.status = AnswerStatus::TempFail;
        a.error = rcode == LDNS_RCODE_SERVFAIL ? "SERVFAIL" : rcode == LDNS_RCODE_REFUSED ? "REFUSED"
                                                                                         : "DNS error code " + std::to_string(int(rcode));
        return a;
    }

    // Follow CNAMEs from the query name through the answer section.
    const ldns_rr_list* answer = ldns_pkt_answer(pkt.get());
    size_t count = answer ? ldns_rr_list_rr_count(answer) : 0;
    for (int hops = 0; type != Type::CNAME; ++hops) {
        std::string next;
        for (size_t i = 0; i < count && next.empty(); ++i) {
            const ldns_rr* rr = ldns_rr_list_rr(answer, i);
            if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_CNAME || dname_text(ldns_rr_owner(rr)) != a.canonical) continue;
            Record r;
            if (!record_from(rr, Type::CNAME, r)) return make_error("malformed CNAME record for " + a.canonical);
            next = r.text;
        }
        if (next.empty()) break;
        if (hops >= kMaxChain) return make_error("CNAME chain too long at " + a.canonical);
        a.canonical = next;
    }
    for (size_t i = 0; i < count; ++i) {
        const ldns_rr* rr = ldns_rr_list_rr(answer, i);
        if (ldns_rr_get_type(rr) != static_cast<ldns_rr_type>(type) || ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
            dname_text(ldns_rr_owner(rr)) != a.canonical)
            continue;
        Record r;
        if (!record_from(rr, type, r))
            return make_error("malformed " + std::string(type_name(type)) + " record for " + a.canonical);
        a.records.push_back(std::move(r));
    }
    if (rcode == LDNS_RCODE_NXDOMAIN) {
        // RFC 6604: NXDOMAIN speaks of the last name of the chain.
        a.status = AnswerStatus::NxDomain;
        a.error = "host not found (NXDOMAIN)";
        a.records.clear();
        return a;
    }
    a.cname_unresolved = a.records.empty() && a.canonical != qname;
    a.status = a.records.empty() ? AnswerStatus::NoData : AnswerStatus::Ok;
    return a;
}

}  // namespace tern::dns
