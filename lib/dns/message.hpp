// DNS messages for tern's stub resolver: queries built and answers parsed
// with ldns, reduced to the few record types mail delivery needs (MX, A,
// AAAA, CNAME, TLSA, TXT).
//
// parse_answer() checks that a reply belongs to the query (ID, question),
// maps the RCODE onto what a mailer does with it (RFC 5321 5.1, RFC 7505:
// NXDOMAIN is permanent, SERVFAIL and friends are temporary), follows the
// CNAME chain inside the answer section from the query name (bounded), and
// keeps only records of the asked type owned by the chain's last name.  It
// reports the AD bit (RFC 4035 3.2.3) so DANE can trust validated data.
// Every input is untrusted: a malformed reply is an Error, never a crash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::dns {

enum class Type : uint16_t { A = 1, CNAME = 5, MX = 15, TXT = 16, AAAA = 28, TLSA = 52 };

std::string_view type_name(Type type);

enum class AnswerStatus {
    Ok,        // records found
    NoData,    // the name exists, no record of that type
    NxDomain,  // the name does not exist (permanent)
    TempFail,  // SERVFAIL, REFUSED, timeout, network error: try later
};

struct Record {
    Type type = Type::A;
    uint32_t ttl = 0;
    std::string text;         // A/AAAA: the address; MX/CNAME: the host (lower case, no
                              // trailing dot; "" for a null MX "."); TXT: strings joined
    uint16_t preference = 0;  // MX
    uint8_t usage = 0, selector = 0, matching = 0;  // TLSA
    std::string data;         // TLSA: association data (binary)
};

struct Answer {
    AnswerStatus status = AnswerStatus::TempFail;
    bool authenticated = false;  // AD bit set by the (validating) resolver
    bool truncated = false;      // TC bit: ask again over TCP
    std::string canonical;       // the name the records belong to (after CNAMEs)
    bool cname_unresolved = false;  // the chain ends in a CNAME whose target is not in the answer
    std::vector<Record> records;
    std::string error;           // for TempFail/NxDomain: what went wrong, for logs
};

// "Example.ORG." → "example.org"; the root "." → "".
std::string normalize_name(std::string_view name);

// Wire-format query (RD set, EDNS0 with DO, AD set to ask for the AD bit).
Result<std::string> build_query(std::string_view name, Type type, uint16_t id);

// Parses a reply to the query (id, name, type).
Result<Answer> parse_answer(std::string_view wire, uint16_t id, std::string_view name, Type type);

}  // namespace tern::dns
