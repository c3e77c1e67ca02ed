// Reload (SIGHUP, `mailctl reload`): re-read tern.conf and services.conf
// and change only what changed.
//
// - A service whose line is unchanged keeps its processes and sockets.
// - A changed service is restarted: its workers retire (SIGTERM, SIGKILL
//   after master_stop_timeout) and new ones start at once.  Every address
//   the new configuration still lists keeps its open socket (handed over,
//   even to another service), so not one connection is refused; sockets for
//   new addresses are opened first, and a failure keeps the old service.
// - A new service starts; a removed one stops and its socket files go.
// - When tern.conf's effective values changed, every service counts as
//   changed, because workers read tern.conf only when they start.
// A configuration with errors is refused as a whole and the running one stays.
#include <fcntl.h>

#include <algorithm>
#include <set>

#include "lib/log/log.hpp"
#include "master/listeners.hpp"
#include "master/runtime.hpp"
#include "master/tables.hpp"

namespace tern::master {
namespace {

const config::ServiceSpec* find_spec(const std::vector<config::ServiceSpec>& specs, const std::string& name) {
    for (const auto& s : specs)
        if (s.name == name) return &s;
    return nullptr;
}

// Dups of a service's sockets into the pool; fds[i] belongs to listen[i]
// (open_listeners makes one socket per address, in order).
void add_to_pool(SocketPool& pool, const config::ServiceSpec& spec, const std::vector<Fd>& fds) {
    if (spec.type == config::ListenType::None) return;
    for (size_t i = 0; i < fds.size() && i < spec.listen.size(); ++i) {
        int dup = fcntl(fds[i].get(), F_DUPFD_CLOEXEC, 3);
        if (dup >= 0) pool[socket_key(spec.type, spec.listen[i])] = Fd(dup);
    }
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

    compile_stale_tables(next);
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

    // The open sockets of every service that stops or changes, by address
    // (dup'd, so the old workers keep theirs until they are gone): a new
    // line listing the same address takes the socket over instead of
    // binding again, which would fail while old workers still hold it.
    SocketPool pool;
    std::set<std::string> still_listed;
    for (const auto& spec : next_specs)
        for (const auto& a : spec.listen) still_listed.insert(socket_key(spec.type, a));
    for (const auto& old : specs_) {
        bool kept = std::find(diff.unchanged.begin(), diff.unchanged.end(), old.name) != diff.unchanged.end();
        if (const Service* svc = supervisor_->find(old.name); svc && !kept) add_to_pool(pool, old, svc->listeners);
    }
    // Socket files of the old line that no new line lists.
    auto remove_unlisted = [&](const config::ServiceSpec& old) {
        config::ServiceSpec gone = old;
        gone.listen.clear();
        for (const auto& a : old.listen)
            if (!still_listed.count(socket_key(old.type, a))) gone.listen.push_back(a);
        remove_socket_files(gone);
    };

    for (const auto& name : diff.removed) {
        supervisor_->remove(name);
        remove_unlisted(*find_spec(specs_, name));
        log::info("service %s: removed", name.c_str());
    }
    for (const auto& spec : next_specs) {
        const auto* old = find_spec(specs_, spec.name);
        bool is_changed = std::find(diff.changed.begin(), diff.changed.end(), spec.name) != diff.changed.end();
        if (old && !is_changed) {
            running.push_back(spec);
            continue;
        }
        auto opened = open_listeners(spec, root_, next.get("default_user"), &pool);
        if (!opened) {
            fail(opened.message() + (old ? " (the old service keeps running)" : ""));
            if (old) running.push_back(*old);
            continue;
        }
        if (old) {
            supervisor_->remove(spec.name);
            remove_unlisted(*old);
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
