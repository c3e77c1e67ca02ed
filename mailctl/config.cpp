// mailctl config: effective tern.conf values (like `postconf`, `postconf -n`)
// and `config check`, which reports every problem in tern.conf and
// services.conf as file:line.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "mailctl/commands.hpp"

namespace tern::mailctl {
namespace {

Result<std::string> read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error("cannot open " + path + ": " + std::strerror(errno));
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

int check(const Context& ctx) {
    int errors = 0;
    const std::string conf_path = ctx.config_dir + "/tern.conf";
    config::Config config;
    auto loaded = config::Config::load(ctx.config_dir);
    if (loaded) {
        config = std::move(loaded).value();
    } else {
        std::fprintf(stderr, "%s\n", loaded.message().c_str());
        ++errors;
        // Keep checking services.conf against what tern.conf does say.
        auto text = read_text(conf_path);
        config = config::Config::parse(text ? text.value() : "", conf_path);
        config.set("config_directory", ctx.config_dir);
    }
    auto specs = config::load_services(config);
    if (!specs) {
        std::fprintf(stderr, "%s\n", specs.message().c_str());
        ++errors;
    } else {
        const std::string daemon_dir = config.get("daemon_directory");
        for (const auto& s : specs.value()) {
            std::string program = daemon_dir + "/" + s.command;
            if (access(program.c_str(), X_OK) != 0)
                std::fprintf(stderr, "%s/services.conf:%d: warning: service %s: program %s: %s\n",
                             ctx.config_dir.c_str(), s.line, s.name.c_str(), program.c_str(),
                             std::strerror(errno));
        }
    }
    if (errors) return kExitFailure;
    std::printf("%s: configuration OK\n", ctx.config_dir.c_str());
    return kExitOk;
}

}  // namespace

int cmd_config(Context& ctx, const std::vector<std::string>& args) {
    if (!args.empty() && args[0] == "check") {
        if (args.size() > 1) return usage_error("config", "config check takes no arguments");
        return check(ctx);
    }
    bool only_non_default = false;
    std::vector<std::string> keys;
    for (const auto& a : args) {
        if (a == "-n") only_non_default = true;
        else if (!a.empty() && a[0] == '-') return usage_error("config", "unknown option '" + a + "'");
        else keys.push_back(a);
    }
    auto loaded = load_config(ctx);
    if (!loaded) return kExitFailure;
    const config::Config& config = loaded.value();
    if (keys.empty()) {
        for (const auto& [key, value] : config.effective(only_non_default))
            std::printf("%s = %s\n", key.c_str(), value.c_str());
        return kExitOk;
    }
    int rc = kExitOk;
    for (const auto& key : keys) {
        if (!config::find_key(key)) {
            std::fprintf(stderr, "mailctl config: unknown key '%s'\n", key.c_str());
            rc = kExitFailure;
            continue;
        }
        if (only_non_default && !config.is_set(key)) continue;
        std::printf("%s = %s\n", key.c_str(), config.get(key).c_str());
    }
    return rc;
}

}  // namespace tern::mailctl
