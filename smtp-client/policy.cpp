// Per-destination routing, TLS and AUTH policy (see policy.hpp).
#include "smtp-client/policy.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include "lib/log/log.hpp"
#include "lib/sys/files.hpp"
#include "lib/tables/address.hpp"

namespace tern::smtpc {

Result<Policy> Policy::open(const config::Config& config, TlsLevel default_level) {
    Policy p;
    p.default_level_ = default_level;
    auto transports = tables::DomainMap::open(config.get("transport_maps"));
    if (!transports) return make_error("transport_maps: " + transports.message());
    p.transports_ = std::move(*transports);
    auto tls = tables::DomainMap::open(config.get("smtp_tls_policy_maps"));
    if (!tls) return make_error("smtp_tls_policy_maps: " + tls.message());
    p.tls_ = std::move(*tls);
    p.relayhost_ = config.get("relayhost");
    p.sasl_path_ = config.get("smtp_sasl_password_maps");
    return p;
}

Plan Policy::plan(const std::string& domain) {
    Plan plan;
    auto refuse = [&](std::string why) {
        plan.refused = true;
        plan.outcome = delivery::Outcome::Deferred;
        plan.dsn = "4.3.0";
        plan.text = std::move(why);
        log::warning("%s", plan.text.c_str());
        return plan;
    };
    (void)transports_.refresh();
    (void)tls_.refresh();
    plan.nexthop = domain;
    auto t = transports_.lookup(domain);
    if (!t) return refuse("transport_maps lookup failed: " + t.message());
    if (*t) {
        auto entry = tables::parse_transport(**t);
        if (!entry) return refuse("transport_maps entry for " + domain + ": " + entry.message());
        if (entry->kind == tables::TransportEntry::Kind::Error) {
            plan.refused = true;
            plan.outcome = entry->dsn[0] == '4' ? delivery::Outcome::Deferred : delivery::Outcome::Bounced;
            plan.dsn = entry->dsn;
            plan.text = entry->text;
            return plan;
        }
        if (entry->kind == tables::TransportEntry::Kind::Local)
            // qmgr routes `local` domains to local-delivery; this request
            // was routed before the table changed.  Its next attempt goes there.
            return refuse("transport_maps sends " + domain + " to local delivery now; retried there");
        if (!entry->nexthop.empty()) plan.nexthop = entry->nexthop;
    } else if (!relayhost_.empty()) {
        plan.nexthop = relayhost_;
    }
    plan.level = default_level_;
    for (const std::string& key : {plan.nexthop, domain}) {
        auto level = tls_.lookup(key);
        if (!level) return refuse("smtp_tls_policy_maps lookup failed: " + level.message());
        if (!*level) continue;
        auto parsed = parse_tls_level(**level);
        if (!parsed) return refuse("smtp_tls_policy_maps entry for " + key + ": " + parsed.message());
        plan.level = *parsed;
        plan.level_from_table = true;
        break;
    }
    if (!sasl_path_.empty()) {
        struct stat st{};
        if (::stat(sasl_path_.c_str(), &st) != 0) return refuse("smtp_sasl_password_maps " + sasl_path_ + ": cannot read it");
        if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0)
            return refuse("smtp_sasl_password_maps " + sasl_path_ +
                          ": must be owned by the smtp-client user and readable by nobody else (chmod 600)");
        auto text = sys::read_file(sasl_path_, 1 << 20);
        if (!text) return refuse("smtp_sasl_password_maps: " + text.message());
        plan.auth = tables::find_credentials(*text, plan.nexthop);
        if (plan.auth) plan.level_from_table = true;
        if (plan.auth && plan.level < TlsLevel::Encrypt) plan.level = TlsLevel::Encrypt;
    }
    return plan;
}

}  // namespace tern::smtpc
