// `mailctl block`: the clients, senders and accounts smtpd refuses and the
// local uids whose sendmail mail qmgr holds, for going over a rate limit
// (lib/policy), listed or cleared by hand.
//
//   mailctl block list              one line per active block
//   mailctl block clear ADDR|IP|UID lift a block now (and reset its counter)
#include <ctime>
#include <iostream>

#include "lib/policy/limits.hpp"
#include "mailctl/commands.hpp"

namespace tern::mailctl {
namespace {

std::string format_time(int64_t t) {
    time_t tt = static_cast<time_t>(t);
    tm local{};
    localtime_r(&tt, &local);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local);
    return buf;
}

int list_blocks(policy::LimitsStore* store) {
    int64_t now = time(nullptr);
    if (!store) {
        std::cout << "No blocks\n";
        return kExitOk;
    }
    auto blocks = store->list_blocks(now);
    if (!blocks) {
        print_error("cannot read blocks: " + blocks.message());
        return kExitFailure;
    }
    if (blocks->empty()) {
        std::cout << "No blocks\n";
        return kExitOk;
    }
    for (const auto& b : *blocks)
        std::cout << policy::kind_name(b.kind) << " " << b.key << " until " << format_time(b.until) << " ("
                  << format_duration(b.until - now) << " left): " << b.reason << "\n";
    return kExitOk;
}

}  // namespace

int cmd_block(Context& ctx, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << find_command("block")->usage;
        return kExitOk;
    }
    if (args.empty()) return usage_error("block", "missing subcommand (list or clear)");
    const std::string& sub = args[0];
    if (sub != "list" && sub != "clear") return usage_error("block", "unknown subcommand '" + sub + "'");
    if (sub == "list" && args.size() != 1) return usage_error("block", "list takes no arguments");
    if (sub == "clear" && args.size() != 2) return usage_error("block", "clear takes one ADDR, IP, USER or UID");

    auto config = load_config(ctx);
    if (!config) return kExitFailure;
    auto store = policy::LimitsStore::open_existing(config->get("data_directory"));
    if (!store) {
        print_error("cannot open the policy database: " + store.message());
        return kExitFailure;
    }
    if (sub == "list") return list_blocks(store->get());

    const std::string& key = args[1];
    int removed = 0;
    if (*store) {
        auto r = (*store)->clear(key);
        if (!r) {
            print_error("cannot clear " + key + ": " + r.message());
            return kExitFailure;
        }
        removed = *r;
    }
    if (removed == 0) {
        std::cout << key << " is not blocked\n";
        return kExitFailure;
    }
    std::cout << "cleared block of " << key << "\n";
    return kExitOk;
}

}  // namespace tern::mailctl
