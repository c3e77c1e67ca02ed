// Reload (SIGHUP, `mailctl reload`): re-read tern.conf and services.conf
// and change only what changed.
//
// - A service whose line is unchanged keeps its processes and sockets.
// - A changed service is restarted: its workers retire (SIGTERM, SIGKILL
//   after master_stop_timeout) and new ones start at once.  When its listen
//   addresses are the same, the open sockets are handed over, so not one
//   connection is refused; otherwise the new sockets are opened first and a
//   failure keeps the old service running.
// - A new service starts; a removed one stops and its socket files go.
// - When tern.conf's effective values changed, every service counts as
//   changed, because workers read tern.conf only when they start.
// A configuration with errors is refused as a whole and the running one stays.
#include <algorithm>

#include "lib/log/log.hpp"
#include "master/listeners.hpp"
#include "master/runtime.hpp"

namespace tern::master {
namespace {

const config::ServiceSpec* find_spec(const std::vector<config::ServiceSpec>& specs, const std::string& name) {
    for (const auto& s : specs)
        if (s.name == name) return &s;
    return nullptr;
}

}  // namespace

bool same_service(const config::ServiceSpec& a, const config::ServiceSpec& b) {
    config::ServiceSpec x = a, y = b;
    x.line = y.line = 0;  // moving a line (a comment added above) is no change
    return x == y;
}

ReloadDiff diff_services(const std::vector<config::ServiceSpec>& old_specs,
                         const std::vector<config::ServiceSpec>& new_specs, bool restart_all) {
    ReloadDiff d;
    for (const auto& o : old_specs)
        if (!find_spec(new_specs, o.name)) d.removed.push_back(o.name);
    for (const auto& n : new_specs) {
        const auto* o = find_spec(old_specs, n.name);
        if (!o) d.added.push_back(n.name);
        else if (restart_all || !same_service(*o, n)) d.changed.push_back(n.name);
        else d.unchanged.push_back(n.name);
    }
    return d;
}

Status Runtime::reload() {
    if (shutting_down_) return make_error("master is stopping");
    auto loaded = config::Config::load(config_.dir());
    if (!loaded) return loaded.error();
    config::Config next = std::move(loaded).value();
    auto specs = config::load_services(next);
    if (!specs) return specs.error();
    std::vector<config::ServiceSpec> next_specs = std::move(specs).value();

    bool config_changed = next.effective(false) != config_.effective(false);
    ReloadDiff diff = diff_services(specs_, next_specs, config_changed);
    if (config_.get("log_target") != next.get("log_target")) log::init("master", next.get("log_target"));
    supervisor_->set_settings(next.get("daemon_directory"), Limits::from(next));

    std::string failures;
    auto fail = [&](const std::string& message) {
        log::error("reload: %s", message.c_str());
        if (!failures.empty()) failures += "\n";
        failures += message;
    };
    std::vector<config::ServiceSpec> running;  // the specs in effect afterwards

    for (const auto& name : diff.removed) {
        const auto* old = find_spec(specs_, name);
        supervisor_->remove(name);
        remove_socket_files(*old);
        log::info("service %s: removed", name.c_str());
    }
    for (const auto& spec : next_specs) {
        const auto* old = find_spec(specs_, spec.name);
        bool is_changed = std::find(diff.changed.begin(), diff.changed.end(), spec.name) != diff.changed.end();
        if (old && !is_changed) {
            running.push_back(spec);
            continue;
        }
        if (old && same_listen(*old, spec)) {
            auto fds = supervisor_->remove(spec.name);
            auto names = listener_names(spec, fds.size());
            supervisor_->add(spec, std::move(fds), std::move(names));
            log::info("service %s: restarted with its new settings", spec.name.c_str());
            running.push_back(spec);
            continue;
        }
        auto opened = open_listeners(spec, root_);
        if (!opened) {
            fail(opened.message() + (old ? " (the old service keeps running)" : ""));
            if (old) running.push_back(*old);
            continue;
        }
        if (old) {
            supervisor_->remove(spec.name);
            // Socket files the new line no longer lists.
            config::ServiceSpec gone = *old;
            gone.listen.clear();
            for (const auto& a : old->listen) {
                bool kept = std::any_of(spec.listen.begin(), spec.listen.end(),
                                        [&](const auto& b) { return b.to_string() == a.to_string(); });
                if (!kept) gone.listen.push_back(a);
            }
            remove_socket_files(gone);
        }
        supervisor_->add(spec, std::move(opened->fds), std::move(opened->names));
        log::info("service %s: %s", spec.name.c_str(), old ? "restarted with its new settings" : "added");
        running.push_back(spec);
    }

    std::vector<std::string> order;
    for (const auto& s : running) order.push_back(s.name);
    supervisor_->set_order(order);
    specs_ = std::move(running);
    config_ = std::move(next);
    log::info("reload: %zu added, %zu changed, %zu removed, %zu unchanged", diff.added.size(),
              diff.changed.size(), diff.removed.size(), diff.unchanged.size());
    if (!failures.empty()) return make_error(failures);
    return {};
}

}  // namespace tern::master
