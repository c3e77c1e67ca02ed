// mailctl queue: look at and act on the mail queue (mailq, postsuper and
// postqueue in one place).  Reads and writes the queue's LMDB directly —
// LMDB serialises writers across processes, so this is safe while qmgr
// runs — and pokes qmgr afterwards so it notices at once.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <ctime>

#include "lib/mailq/mailq.hpp"
#include "lib/queue/queue.hpp"
#include "mailctl/commands.hpp"

namespace tern::mailctl {

namespace {

constexpr size_t kMaxHeaderBytes = 256 * 1024;

constexpr std::chrono::seconds kLoggedWait{5};

// Opens the queue once what smtpd acknowledged so far is in it (its commit
// log reaches LMDB a few milliseconds after the 250): a queue id a client
// was just given can be listed, shown, held or deleted.
Result<std::unique_ptr<queue::Store>> open_store(const config::Config& config) {
    auto store = queue::Store::open(config.get("queue_directory"));
    if (!store) {
        print_error("cannot open the queue: " + store.message());
        return store;
    }
    if (!(*store)->wait_for_logged(kLoggedWait))
        std::fputs("mailctl: note: messages smtpd accepted in the last seconds may be missing "
                   "(its commit log is not yet in the queue database)\n", stderr);
    return store;
}

// qmgr may be down: the change is in LMDB and it sees it when it starts.
void poke(const config::Config& config, std::string_view what) {
    if (auto st = mailq::poke_qmgr(config, what); !st)
        std::fprintf(stderr, "mailctl: note: qmgr not reached (%s); it will see the change when it runs\n",
                     st.message().c_str());
}

int list(const config::Config& config) {
    auto store = open_store(config);
    if (!store) return kExitFailure;
    std::fputs(mailq::format_listing((*store)->list_all(), ::time(nullptr)).c_str(), stdout);
    return kExitOk;
}

int show(const config::Config& config, const std::string& id) {
    auto store = open_store(config);
    if (!store) return kExitFailure;
    auto m = (*store)->load(id);
    if (!m) {
        print_error(id + ": no such message in the queue");
        return kExitFailure;
    }
    std::string headers;
    if (auto body = (*store)->open_body(id)) {
        std::string buf(kMaxHeaderBytes, '\0');
        ssize_t n = ::pread(body->get(), buf.data(), buf.size(), 0);
        if (n > 0) {
            buf.resize(static_cast<size_t>(n));
            size_t end = buf.find("\n\n");
            headers = buf.substr(0, end == std::string::npos ? buf.size() : end + 1);
        }
    } else {
        headers = "(message file unreadable: " + body.message() + ")\n";
    }
    std::fputs(mailq::format_details(*m, headers).c_str(), stdout);
    return kExitOk;
}

// The message as queued (tern's Received: first, LF line ends), like
// Postfix's `postcat -bh -q ID`: from its file or from the records.
int cat(const config::Config& config, const std::string& id) {
    auto store = open_store(config);
    if (!store) return kExitFailure;
    if (!(*store)->load(id)) {
        print_error(id + ": no such message in the queue");
        return kExitFailure;
    }
    auto body = (*store)->open_body(id);
    if (!body) {
        print_error(id + ": message file unreadable: " + body.message());
        return kExitFailure;
    }
    char buf[64 * 1024];
    for (off_t at = 0;;) {
        ssize_t n = ::pread(body->get(), buf, sizeof buf, at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            print_error(id + ": read: " + std::strerror(errno));
            return kExitFailure;
        }
        if (n == 0) break;
        if (std::fwrite(buf, 1, size_t(n), stdout) != size_t(n)) return kExitFailure;
        at += n;
    }
    return std::fflush(stdout) == 0 ? kExitOk : kExitFailure;
}

int remove(const config::Config& config, const std::vector<std::string>& ids) {
    auto store = open_store(config);
    if (!store) return kExitFailure;
    std::vector<std::string> targets = ids;
    if (ids.size() == 1 && ids[0] == "ALL") {
        targets.clear();
        for (const auto& m : (*store)->list_all()) targets.push_back(m.envelope.id);
    }
    int rc = kExitOk;
    size_t removed = 0;
    for (const auto& id : targets) {
        if (auto st = (*store)->remove(id); !st) {
            print_error(st.message());
            rc = kExitFailure;
        } else {
            ++removed;
            std::printf("%s: removed\n", id.c_str());
        }
    }
    if (ids.size() == 1 && ids[0] == "ALL") std::printf("%zu messages removed\n", removed);
    return rc;
}

int hold(const config::Config& config, const std::vector<std::string>& ids, bool held) {
    auto store = open_store(config);
    if (!store) return kExitFailure;
    int rc = kExitOk;
    for (const auto& id : ids) {
        if (auto st = (*store)->set_hold(id, held); !st) {
            print_error(st.message());
            rc = kExitFailure;
        } else {
            std::printf("%s: %s\n", id.c_str(), held ? "placed on hold" : "released from hold");
        }
    }
    if (!held && rc == kExitOk) poke(config, "wake");
    return rc;
}

int flush(const config::Config& config) {
    auto store = open_store(config);
    if (!store) return kExitFailure;
    if (auto st = (*store)->set_all_due(::time(nullptr)); !st) {
        print_error(st.message());
        return kExitFailure;
    }
    poke(config, "wake");
    return kExitOk;
}

}  // namespace

int cmd_queue(Context& ctx, const std::vector<std::string>& args) {
    if (args.empty()) return usage_error("queue", "missing subcommand");
    const std::string& sub = args[0];
    std::vector<std::string> rest(args.begin() + 1, args.end());
    static const char* const kSubcommands[] = {"list", "show", "cat", "flush", "delete", "hold", "release"};
    if (std::find(std::begin(kSubcommands), std::end(kSubcommands), sub) == std::end(kSubcommands))
        return usage_error("queue", "unknown subcommand '" + sub + "'");
    auto config = load_config(ctx);
    if (!config) return kExitFailure;
    if (sub == "list") {
        if (!rest.empty()) return usage_error("queue", "list takes no arguments");
        return list(*config);
    }
    if (sub == "flush") {
        if (!rest.empty()) return usage_error("queue", "flush takes no arguments");
        return flush(*config);
    }
    if (sub == "show" || sub == "cat" || sub == "delete" || sub == "hold" || sub == "release") {
        if (rest.empty()) return usage_error("queue", sub + " needs a queue ID");
        if ((sub == "show" || sub == "cat") && rest.size() != 1) return usage_error("queue", sub + " takes one queue ID");
        for (const auto& id : rest)
            if (!queue::valid_queue_id(id) && !(sub == "delete" && id == "ALL" && rest.size() == 1))
                return usage_error("queue", "'" + id + "' is not a queue ID");
        if (sub == "show") return show(*config, rest[0]);
        if (sub == "cat") return cat(*config, rest[0]);
        if (sub == "delete") return remove(*config, rest);
        return hold(*config, rest, sub == "hold");
    }
    return usage_error("queue", "unknown subcommand '" + sub + "'");
}

}  // namespace tern::mailctl
