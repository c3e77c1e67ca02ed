// master's running state: start-up of directories, sockets and services,
// signals, status and shutdown.  Reload lives in reload.cpp.  See runtime.hpp.
#include "master/runtime.hpp"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/errno_text.hpp"
#include "lib/log/log.hpp"
#include "lib/net/listen.hpp"
#include "lib/sys/files.hpp"
#include "lib/sys/privileges.hpp"
#include "master/listeners.hpp"
#include "master/tables.hpp"

namespace tern::master {

Runtime::Runtime(event_base* base, config::Config config, std::vector<config::ServiceSpec> specs)
    : base_(base),
      config_(std::move(config)),
      specs_(std::move(specs)),
      root_(geteuid() == 0),
      started_(std::chrono::steady_clock::now()) {}

Runtime::~Runtime() = default;

std::string Runtime::control_path() const { return config_.get("run_directory") + "/master.sock"; }

// The directories every part of tern expects.  When master is root, a
// directory it creates belongs to the user who writes in it: the queue and
// data directories to default_user, the mail store to vmail_user.  An
// existing directory is left as the administrator made it.
Status Runtime::prepare_directories() {
    struct Dir {
        const char* key;
        const char* owner_key;  // nullptr: root
        mode_t mode;
    };
    const Dir dirs[] = {
        {"run_directory", nullptr, 0755},
        {"queue_directory", "default_user", 0750},
        {"data_directory", "default_user", 0750},
        {"mail_directory", "vmail_user", 0750},
    };
    for (const auto& d : dirs) {
        std::string path = config_.get(d.key);
        if (path.empty()) continue;
        struct stat st;
        bool existed = ::stat(path.c_str(), &st) == 0;
        if (auto s = sys::mkdir_p(path, d.mode); !s) return make_error(std::string(d.key) + ": " + s.message());
        if (existed || !root_ || !d.owner_key) continue;
        std::string user = config_.get(d.owner_key);
        auto ids = sys::lookup_user(user);
        if (!ids) {
            log::warning("%s %s: owner %s: %s", d.key, path.c_str(), user.c_str(), ids.message().c_str());
            continue;
        }
        if (::chown(path.c_str(), ids->uid, ids->gid) != 0)
            return errno_error(std::string(d.key) + ": chown " + path);
    }
    return {};
}

Status Runtime::open_control_socket() {
    auto fd = net::listen_unix(control_path(), 0600);
    if (!fd) return make_error("control socket: " + fd.message());
    ControlHandlers handlers;
    handlers.status = [this](ipc::Message& reply) { status(reply); };
    handlers.reload = [this] { return reload(); };
    handlers.stop = [this] { shutdown(); };
    control_ = std::make_unique<ControlServer>(base_, std::move(fd).value(), std::move(handlers));
    return {};
}

void Runtime::install_signals() {
    signal(SIGPIPE, SIG_IGN);
    sigchld_ = event::signal_watch(base_, SIGCHLD, [this](short) { supervisor_->reap(); });
    sigterm_ = event::signal_watch(base_, SIGTERM, [this](short) { shutdown(); });
    sigint_ = event::signal_watch(base_, SIGINT, [this](short) { shutdown(); });
    sighup_ = event::signal_watch(base_, SIGHUP, [this](short) {
        log::info("reload requested by SIGHUP");
        if (auto st = reload(); !st) log::error("reload failed, keeping the running configuration: %s",
                                                st.message().c_str());
    });
    sigchld_.add();
    sigterm_.add();
    sigint_.add();
    sighup_.add();
}

Status Runtime::start() {
    if (auto st = prepare_directories(); !st) return st;
    if (!root_) {
        const passwd* pw = getpwuid(getuid());
        std::string me = pw ? pw->pw_name : std::to_string(getuid());
        log::warning("not running as root: services run as %s, privileges are not dropped", me.c_str());
    }
    // Every socket before any worker: a port already in use fails the start
    // as a whole instead of leaving half a mail system running.
    std::vector<ServiceListeners> opened;
    for (const auto& spec : specs_) {
        auto l = open_listeners(spec, root_, config_.get("default_user"));
        if (!l) {
            for (const auto& s : specs_) remove_socket_files(s);
            return l.error();
        }
        opened.push_back(std::move(l).value());
    }
    if (auto st = open_control_socket(); !st) return st;
    supervisor_ = std::make_unique<Supervisor>(base_, config_.dir(), config_.get("daemon_directory"),
                                               Limits::from(config_), root_);
    install_signals();
    log::info("daemon started -- version %s, configuration %s", kVersion, config_.dir().c_str());
    compile_stale_tables(config_);
    for (size_t i = 0; i < specs_.size(); ++i)
        supervisor_->add(specs_[i], std::move(opened[i].fds), std::move(opened[i].names));
    return {};
}

void Runtime::shutdown() {
    if (shutting_down_) return;
    shutting_down_ = true;
    log::info("terminating on request");
    supervisor_->stop_all([this] {
        for (const auto& spec : specs_) remove_socket_files(spec);
        ::unlink(control_path().c_str());
        log::info("daemon stopped");
        event_base_loopexit(base_, nullptr);
    });
}

void Runtime::status(ipc::Message& reply) const {
    reply.add_int("master_pid", getpid());
    reply.add("version", kVersion);
    reply.add("config", config_.dir());
    reply.add_int("uptime", std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::steady_clock::now() - started_)
                                .count());
    reply.add_int("stopping", shutting_down_ ? 1 : 0);
    supervisor_->describe(reply);
}

}  // namespace tern::master
