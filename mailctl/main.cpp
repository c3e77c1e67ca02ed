// mailctl: tern's management command.  Wiring only: global options, help,
// dispatch to the subcommand table (commands.cpp).
#include <cstdio>
#include <string>
#include <vector>

#include "lib/config/config.hpp"
#include "mailctl/commands.hpp"

namespace {

void print_overview(FILE* out) {
    std::fputs(
        "usage: mailctl [-c CONFIG_DIR] COMMAND [ARGS...]\n"
        "       mailctl help [COMMAND]\n"
        "\n"
        "Manages tern, the mail system.\n"
        "  -c DIR      configuration directory (default: $TERN_CONFIG_DIR, else /etc/tern)\n"
        "  -h, --help  this text; `mailctl COMMAND --help` describes a command\n"
        "\n"
        "Commands:\n",
        out);
    for (const auto& c : tern::mailctl::commands())
        std::fprintf(out, "  %-10.*s %.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                     static_cast<int>(c.summary.size()), c.summary.data());
    std::fputs(
        "\n"
        "Exit status: 0 success, 1 failure (the reason is printed), 2 usage error,\n"
        "3 tern is not running (status, reload).\n",
        out);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace tern::mailctl;
    std::string dir_flag;
    int i = 1;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            print_overview(stdout);
            return kExitOk;
        }
        if (a == "-c") {
            if (i + 1 >= argc) {
                std::fputs("mailctl: -c needs a directory\n", stderr);
                return kExitUsage;
            }
            dir_flag = argv[++i];
            continue;
        }
        if (a.rfind("-c", 0) == 0 && a.size() > 2) {
            dir_flag = a.substr(2);
            continue;
        }
        break;
    }
    if (i >= argc) {
        print_overview(stderr);
        return kExitUsage;
    }
    std::string name = argv[i++];
    std::vector<std::string> args(argv + i, argv + argc);

    if (name == "help") {
        if (args.empty()) {
            print_overview(stdout);
            return kExitOk;
        }
        const Command* c = find_command(args[0]);
        if (!c) {
            std::fprintf(stderr, "mailctl: unknown command '%s'\n", args[0].c_str());
            return kExitUsage;
        }
        std::fwrite(c->usage.data(), 1, c->usage.size(), stdout);
        return kExitOk;
    }
    const Command* c = find_command(name);
    if (!c) {
        std::fprintf(stderr, "mailctl: unknown command '%s'\n\n", name.c_str());
        print_overview(stderr);
        return kExitUsage;
    }
    if (wants_help(args)) {
        std::fwrite(c->usage.data(), 1, c->usage.size(), stdout);
        return kExitOk;
    }
    Context ctx;
    ctx.config_dir = tern::config::config_dir_from(dir_flag);
    return c->run(ctx, args);
}
