// Next-hop routing of recipients to delivery agents (see route.hpp).
#include "qmgr/route.hpp"

#include "lib/log/log.hpp"

namespace tern::qmgr {

std::optional<std::string> service_socket(const std::vector<config::ServiceSpec>& services, std::string_view command) {
    for (const auto& s : services)
        if (s.command == command && s.type == config::ListenType::Unix && !s.listen.empty())
            return s.listen.front().path;
    return std::nullopt;
}

Result<Router> Router::create(const config::Config& config, const std::vector<config::ServiceSpec>& services) {
    Router r;
    auto local = tables::DomainList::load(config.get_list("mydestination"));
    if (!local) return make_error("mydestination: " + local.message());
    auto virt = tables::DomainList::load(config.get_list("virtual_mailbox_domains"));
    if (!virt) return make_error("virtual_mailbox_domains: " + virt.message());
    r.local_domains_ = std::move(*local);
    r.virtual_domains_ = std::move(*virt);
    r.transport_path_ = config.get("transport_maps");
    r.open_transports();
    // local-delivery's socket: from services.conf, else where the stock
    // services.conf puts it.
    std::string local_path =
        service_socket(services, "local-delivery").value_or(config.get("run_directory") + "/local.sock");
    r.local_ = TransportSpec{"local-delivery", local_path};
    if (auto remote = service_socket(services, "smtp-client")) r.remote_ = TransportSpec{"smtp-client", *remote};
    return r;
}

void Router::reload_domains() {
    (void)local_domains_.reload_if_changed();
    (void)virtual_domains_.reload_if_changed();
    if (!transports_) open_transports();
    else if (auto st = transports_->refresh(); !st) log::warning("transport_maps: %s", st.message().c_str());
}

// A table that cannot be opened is not fatal for qmgr: local mail keeps
// flowing, and the next reload_domains() tries again.
void Router::open_transports() {
    if (transport_path_.empty()) return;
    auto map = tables::DomainMap::open(transport_path_);
    if (map) {
        transports_.emplace(std::move(*map));
        transport_error_.clear();
        return;
    }
    if (transport_error_ != map.message()) log::warning("transport_maps: %s", map.message().c_str());
    transport_error_ = map.message();
}

std::optional<std::string> Router::transport_local(std::string_view domain) const {
    if (transport_path_.empty()) return std::nullopt;
    if (!transports_) return "transport_maps cannot be read: " + transport_error_;
    auto value = transports_->lookup(domain);
    if (!value) return "transport_maps lookup failed: " + value.message();
    if (!*value) return std::nullopt;
    auto entry = tables::parse_transport(**value);
    if (entry && entry->kind == tables::TransportEntry::Kind::Local) return std::string();
    return std::nullopt;  // smtp: and error: entries, and bad ones, are smtp-client's
}

Route Router::route(std::string_view address) const {
    size_t at = address.rfind('@');
    if (at == std::string_view::npos) return {local_->name, "local", ""};
    std::string_view domain = address.substr(at + 1);
    if (local_domains_.contains(domain) || virtual_domains_.contains(domain)) return {local_->name, "local", ""};
    if (auto local = transport_local(domain)) {
        if (local->empty()) return {local_->name, "local", ""};
        return {"", std::string(domain), *local};
    }
    if (remote_) return {remote_->name, std::string(domain), ""};
    return {"", std::string(domain), "remote delivery is not available (no smtp-client service in services.conf)"};
}

}  // namespace tern::qmgr
