// MTA-STS for smtp-client (RFC 8461): finds a destination's policy and
// keeps it for its max_age.
//
// policy_for(domain): the "_mta-sts.<domain>" TXT record (asynchronous
// DNS); when its id differs from the cached policy's, or nothing valid is
// cached, the policy is fetched with HTTPS GET from
// https://mta-sts.<domain>/.well-known/mta-sts.txt (port smtp_mta_sts_port,
// certificate verified for that name against the system CAs plus
// smtp_tls_CAfile; no redirects; at most 64 KiB).  A failed lookup or
// fetch falls back to a still-valid cached policy (RFC 8461 5.1), else to
// no policy.  The answer always arrives from the event loop.
//
// Fetched policies are also written to $data_directory/mta-sts/<domain>
// (the TXT id, the expiry in unix seconds, then the policy text as served),
// so that a restarted smtp-client still knows them until max_age ends
// (RFC 8461 5.1: a cached policy guards against a downgrade that strips
// the TXT record or the policy host).  A file that does not parse is
// ignored; without a writable directory the cache is in memory only.
//
// What a policy means is the Agent's job: enforce keeps only MX hosts the
// policy names and requires verified TLS to them; testing only logs.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/dns/resolver.hpp"
#include "lib/event/loop.hpp"
#include "lib/mtasts/policy.hpp"
#include "smtp-client/settings.hpp"

namespace tern::smtpc {

class StsCache {
public:
    using Done = std::function<void(std::optional<mtasts::Policy>)>;
    StsCache(event_base* base, const Settings& settings, dns::Resolver& resolver);
    ~StsCache();
    void policy_for(const std::string& domain, Done done);
    // Which policy applies to domain now, as "id@expiry" ("" for none): a
    // session opened under one stamp is not reused under another, so a
    // policy that expired or was replaced is looked at again.
    std::string stamp(const std::string& domain) const;

private:
    struct Entry {
        std::string id;
        mtasts::Policy policy;
        double expires = 0;
    };
    struct Fetch;
    std::optional<mtasts::Policy> cached(const std::string& domain) const;
    void load(const std::string& domain);  // from the directory into cache_, once per domain
    void save(const std::string& domain, const Entry& entry, std::string_view text);
    void fetch(const std::string& domain, const std::string& id, Done done);
    void connect(uint64_t fid, const std::string& ip);
    void finish(uint64_t fid, const std::string& error);

    event_base* base_;
    const Settings& settings_;
    dns::Resolver& resolver_;
    std::map<std::string, Entry> cache_;
    std::string dir_;  // empty: no persistence
    std::map<std::string, bool> loaded_;
    std::map<uint64_t, std::unique_ptr<Fetch>> fetches_;
    std::vector<std::unique_ptr<Fetch>> done_;
    event::Watch reaper_;
    uint64_t next_id_ = 1;
};

}  // namespace tern::smtpc
