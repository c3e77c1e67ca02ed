// Helpers shared by mailctl's subcommands: configuration loading with
// diagnostics, the control-socket request to master, formatting.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "mailctl/commands.hpp"

namespace tern::mailctl {
namespace {

constexpr const char* kNotRunning = "tern is not running";

}  // namespace

bool wants_help(const std::vector<std::string>& args) {
    for (const auto& a : args)
        if (a == "-h" || a == "--help") return true;
    return false;
}

int usage_error(std::string_view command, const std::string& message) {
    std::fprintf(stderr, "mailctl %.*s: %s\n", static_cast<int>(command.size()), command.data(),
                 message.c_str());
    if (const Command* c = find_command(command)) std::fwrite(c->usage.data(), 1, c->usage.size(), stderr);
    return kExitUsage;
}

void print_error(const std::string& message) { std::fprintf(stderr, "mailctl: error: %s\n", message.c_str()); }

Result<config::Config> load_config(const Context& ctx) {
    auto c = config::Config::load(ctx.config_dir);
    if (!c) std::fprintf(stderr, "%s\n", c.message().c_str());
    return c;
}

config::Config load_config_lenient(const Context& ctx) {
    auto c = config::Config::load(ctx.config_dir);
    if (c) return std::move(c).value();
    const std::string path = ctx.config_dir + "/tern.conf";
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    if (in) text << in.rdbuf();
    config::Config lenient = config::Config::parse(text.str(), path);
    lenient.set("config_directory", ctx.config_dir);
    return lenient;
}

Result<std::pair<config::Config, std::vector<config::ServiceSpec>>> load_all(const Context& ctx) {
    auto c = load_config(ctx);
    if (!c) return c.error();
    auto s = config::load_services(c.value());
    if (!s) {
        std::fprintf(stderr, "%s\n", s.message().c_str());
        return s.error();
    }
    return std::make_pair(std::move(c).value(), std::move(s).value());
}

std::string control_socket_path(const config::Config& config) {
    return config.get("run_directory") + "/master.sock";
}

Result<ipc::Message> ask_master(const config::Config& config, const ipc::Message& request, int timeout_ms) {
    const std::string path = control_socket_path(config);
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return make_error(kNotRunning);
    auto sock = ipc::connect_unix(path);
    if (!sock) {
        // Permission problems are worth saying; a socket file nobody accepts
        // on (ECONNREFUSED) is left over from a crash: not running.
        if (sock.message().find("ermission denied") != std::string::npos) return sock.error();
        return make_error(kNotRunning);
    }
    if (auto s = ipc::send_message(sock->get(), request); !s) return s.error();
    auto reply = ipc::recv_message(sock->get(), timeout_ms);
    if (!reply) return make_error("no answer from master on " + path + ": " + reply.message());
    return reply;
}

bool is_not_running(const Error& error) { return error.message == kNotRunning; }

std::string format_duration(long long s) {
    char buf[32];
    if (s < 0) s = 0;
    if (s < 60) std::snprintf(buf, sizeof buf, "%llds", s);
    else if (s < 3600) std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400) std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
    else std::snprintf(buf, sizeof buf, "%lldd%02lldh", s / 86400, (s % 86400) / 3600);
    return buf;
}

}  // namespace tern::mailctl
