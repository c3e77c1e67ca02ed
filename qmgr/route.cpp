// Next-hop routing of recipients to delivery agents (see route.hpp).
#include "qmgr/route.hpp"

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
}

Route Router::route(std::string_view address) const {
    size_t at = address.rfind('@');
    if (at == std::string_view::npos) return {local_->name, "local", ""};
    std::string_view domain = address.substr(at + 1);
    if (local_domains_.contains(domain) || virtual_domains_.contains(domain)) return {local_->name, "local", ""};
    if (remote_) return {remote_->name, std::string(domain), ""};
    return {"", std::string(domain), "remote delivery is not available (no smtp-client service in services.conf)"};
}

}  // namespace tern::qmgr
