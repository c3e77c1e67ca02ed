// Route: which delivery agent a recipient goes to (its "next hop").
//
//   mydestination domains, virtual_mailbox_domains, bare local names
//       → the local-delivery service (nexthop "local")
//   a domain that transport_maps sends to `local` (Postfix transport(5)
//   "local:"; the most specific entry wins, as in smtp-client)
//       → local-delivery too, which resolves the local part as for a
//         mydestination domain; mydestination and virtual domains are
//         never taken away by the table (not even by `*`)
//   every other domain
//       → the smtp-client service when services.conf has one (a unix
//         service whose command is smtp-client), nexthop = the domain;
//         otherwise no transport: the recipient is deferred with a reason
//         that says so, and bounces when its queue lifetime ends.
// A transport table that cannot be read defers the domains it could route
// (4.4.1, with the reason) until it can; the other entries (smtp:,
// error:) are smtp-client's business.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/config/config.hpp"
#include "lib/config/services.hpp"
#include "lib/core/result.hpp"
#include "lib/tables/domain_map.hpp"
#include "lib/tables/domains.hpp"

namespace tern::qmgr {

struct TransportSpec {
    std::string name;         // "local-delivery", "smtp-client"
    std::string socket_path;
};

struct Route {
    std::string transport;    // TransportSpec::name; "" when none
    std::string nexthop;      // "local" or the recipient domain
    std::string unavailable;  // why there is no transport
};

class Router {
public:
    static Result<Router> create(const config::Config& config, const std::vector<config::ServiceSpec>& services);
    Route route(std::string_view address) const;
    const std::optional<TransportSpec>& local() const { return local_; }
    const std::optional<TransportSpec>& remote() const { return remote_; }
    void reload_domains();

private:
    void open_transports();
    // "" when `domain` goes by its transport_maps entry to local delivery;
    // otherwise nullopt, or the reason the table cannot tell.
    std::optional<std::string> transport_local(std::string_view domain) const;

    tables::DomainList local_domains_;
    tables::DomainList virtual_domains_;
    std::string transport_path_;
    std::optional<tables::DomainMap> transports_;
    std::string transport_error_;  // why transport_path_ could not be opened
    std::optional<TransportSpec> local_;
    std::optional<TransportSpec> remote_;
};

// The socket path of the first unix service running `command`, if any.
std::optional<std::string> service_socket(const std::vector<config::ServiceSpec>& services, std::string_view command);

}  // namespace tern::qmgr
