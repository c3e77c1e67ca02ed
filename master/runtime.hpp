// The running master: its configuration, the supervisor of all services,
// the control socket and the signals that drive them.
//
// start() prepares the directories, opens every listening socket and the
// control socket and starts the workers; reload() (SIGHUP or `mailctl
// reload`, in reload.cpp) applies a changed configuration; shutdown()
// (SIGTERM/SIGINT or `mailctl stop`) stops every worker, removes the socket
// files and ends the event loop.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "lib/config/config.hpp"
#include "lib/config/services.hpp"
#include "master/control.hpp"
#include "master/supervisor.hpp"

namespace tern::master {

inline constexpr const char* kVersion = "0.1";

// Which services a reload touches (reload.cpp).
struct ReloadDiff {
    std::vector<std::string> added, changed, removed, unchanged;
};
// A service is unchanged when every field but its line number is equal;
// restart_all (tern.conf itself changed) marks every kept service changed,
// because workers read tern.conf only when they start.
ReloadDiff diff_services(const std::vector<config::ServiceSpec>& old_specs,
                         const std::vector<config::ServiceSpec>& new_specs, bool restart_all);
bool same_service(const config::ServiceSpec& a, const config::ServiceSpec& b);

class Runtime {
public:
    Runtime(event_base* base, config::Config config, std::vector<config::ServiceSpec> specs);
    ~Runtime();

    Status start();
    Status reload();
    void shutdown();
    void status(ipc::Message& reply) const;

private:
    Status prepare_directories();
    Status open_control_socket();
    void install_signals();
    std::string control_path() const;

    event_base* base_;
    config::Config config_;
    std::vector<config::ServiceSpec> specs_;
    bool root_;
    std::chrono::steady_clock::time_point started_;
    std::unique_ptr<Supervisor> supervisor_;
    std::unique_ptr<ControlServer> control_;
    event::Watch sigchld_, sigterm_, sigint_, sighup_;
    bool shutting_down_ = false;
};

}  // namespace tern::master
