// sendmail, mailq, newaliases: the traditional local submission interface
// (one binary; argv[0] picks the default mode).  Wiring only: options,
// configuration, then the mode (submit.hpp).
#include <sysexits.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

#include "lib/config/config.hpp"
#include "lib/mailq/mailq.hpp"
#include "lib/queue/queue.hpp"
#include "lib/tables/aliases.hpp"
#include "sendmail/drop.hpp"
#include "sendmail/options.hpp"
#include "sendmail/submit.hpp"

#if defined(__SANITIZE_ADDRESS__)
// SANITIZE=1 builds only: LeakSanitizer stops the world with ptrace, which a
// setgid (so non-dumpable) sendmail refuses, turning every run into a fatal
// error at exit.  Leaks are still checked when sendmail runs without setgid.
extern "C" const char* __asan_default_options() {
    return ::getegid() != ::getgid() ? "detect_leaks=0" : "";
}
#endif

namespace tern::sendmail {

int list_queue(const config::Config& config) {
    // The queue is private (docs/sendmail.md, "mailq"): like Postfix with
    // authorized_mailq_users = root, only root and the queue owner list it.
    const std::string db = config.get("queue_directory") + "/db";
    if (::access(db.c_str(), R_OK | X_OK) != 0 && errno == EACCES) {
        std::fputs("mailq: only root (and the queue owner) may list the mail queue\n", stderr);
        return EX_NOPERM;
    }
    auto store = queue::Store::open(config.get("queue_directory"));
    if (!store) {
        std::fprintf(stderr, "mailq: cannot read the queue: %s\n", store.message().c_str());
        return EX_TEMPFAIL;
    }
    (void)(*store)->wait_for_logged(std::chrono::seconds(5));  // mail just accepted is listed (mailctl's open_store)
    std::fputs(mailq::format_listing((*store)->list_all(), ::time(nullptr)).c_str(), stdout);
    return EX_OK;
}

int rebuild_aliases(const config::Config& config) {
    std::string path = config.get("alias_maps");
    if (auto st = tables::compile_aliases(path); !st) {
        std::fprintf(stderr, "newaliases: %s\n", st.message().c_str());
        return EX_CANTCREAT;
    }
    return EX_OK;
}

int flush_queue(const config::Config& config) {
    if (auto st = mailq::poke_qmgr(config, "flush"); !st) {
        std::fprintf(stderr, "sendmail: cannot reach qmgr (is tern running?): %s\n", st.message().c_str());
        return EX_UNAVAILABLE;
    }
    return EX_OK;
}

}  // namespace tern::sendmail

using namespace tern;

int main(int argc, char** argv) {
    auto options = sendmail::parse_options(argc, argv);
    if (!options) {
        if (options.message() == "help") {
            std::fputs(sendmail::usage_text().c_str(), stdout);
            return EX_OK;
        }
        std::fprintf(stderr, "sendmail: %s\n%s", options.message().c_str(), sendmail::usage_text().c_str());
        return EX_USAGE;
    }
    auto config = config::Config::load(config::config_dir_from(options->config_dir));
    if (!config) {
        std::fprintf(stderr, "sendmail: configuration error:\n%s\n", config.message().c_str());
        return EX_CONFIG;
    }
    sendmail::install_signal_handlers();
    switch (options->mode) {
    case sendmail::Mode::ListQueue: return sendmail::list_queue(*config);
    case sendmail::Mode::NewAliases: return sendmail::rebuild_aliases(*config);
    case sendmail::Mode::Flush: return sendmail::flush_queue(*config);
    case sendmail::Mode::Smtp: return sendmail::smtp_session(*options, *config);
    case sendmail::Mode::Deliver: return sendmail::submit_message(*options, *config);
    }
    return EX_SOFTWARE;
}
