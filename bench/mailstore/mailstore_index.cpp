// Mail store index benchmark: the store-side cost of what an IMAP client
// does on a big folder (bench/imap measures the whole server).
//
//   mailstore_index [--messages N] [--dir DIR] [--keep]
//
// Fills DIR/Maildir/cur with N small real-shaped messages (no fsync; the
// files are the fixture, not the measured part), then times:
//   cold-open-early  first open as imapd's first SELECT does it: the time to
//                its early answer (EarlyAnswer) and to the stored index
//   cold-open    first open: the folder indexed from the directory listing
//   cold-envelope  first UID FETCH 1:* ENVELOPE: every file read and parsed once
//   warm-open    open of an indexed folder in a fresh Store (SELECT)
//   flags        walk of the view (FETCH 1:* FLAGS needs nothing else)
//   envelope     for_each over every UID with the cached ENVELOPE (UID FETCH 1:* ENVELOPE)
//   refresh      refresh() with nothing changed (a command boundary)
//   rescan       refresh() after cur/'s mtime changed (readdir + name lookups)
//   deliver+refresh  one new message in new/ (not through the store), then refresh()
//   store-deliver+refresh  a delivery through Store::begin_delivery (as
//                local-delivery does: the record already names the file), then
//                refresh() of the open session; three times, cur/'s mtime aged
//   reopen-fresh  open right after a full scan (cur/'s mtime < 1 s old:
//                trusted for that second, so nothing is listed)
//   store+refresh  a flag change by one session, then refresh() of another
#include <sys/stat.h>
#include <time.h>
#include <utime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "lib/mailstore/maildir_store.hpp"
#include "lib/maildir/maildir.hpp"

using namespace tern;
using Clock = std::chrono::steady_clock;

namespace {

double cpu_ms() {
    struct timespec ts {};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Wall time since t0; the CPU time since the matching cpu0 is printed
// beside it (on a loaded machine the wall time mostly measures the others).
double cpu0 = 0;
double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}
double cpu_since() { return cpu_ms() - cpu0; }

std::string message(int i) {
    std::string s = "Return-Path: <sender" + std::to_string(i % 97) + "@example.org>\n";
    s += "From: Sender " + std::to_string(i % 97) + " <sender" + std::to_string(i % 97) + "@example.org>\n";
    s += "To: user@example.net\nSubject: Benchmark message number " + std::to_string(i) + "\n";
    s += "Date: Wed, 2 Dec 2026 05:00:00 +0000\nMessage-ID: <" + std::to_string(i) + ".bench@example.org>\n";
    s += "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n";
    for (int l = 0; l < 20; ++l) s += "Line " + std::to_string(l) + " of the body of message " + std::to_string(i) + ".\n";
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    int n = 100000;
    std::string dir;
    bool keep = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--messages") && i + 1 < argc) n = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!std::strcmp(argv[i], "--keep")) keep = true;
        else {
            std::fprintf(stderr, "usage: %s [--messages N] [--dir DIR] [--keep]\n", argv[0]);
            return 2;
        }
    }
    if (dir.empty()) {
        char tmpl[] = "/var/tmp/tern-mailstore-bench-XXXXXX";
        dir = ::mkdtemp(tmpl);
    }
    std::string root = dir + "/Maildir";
    if (!maildir::ensure_maildir(root)) return 1;
    auto t0 = Clock::now();
    cpu0 = cpu_ms();
    for (int i = 0; i < n; ++i) {
        char name[96];
        std::string m = message(i);
        size_t lines = static_cast<size_t>(std::count(m.begin(), m.end(), '\n'));
        std::snprintf(name, sizeof name, "%d.M%dP1.bench,S=%zu,W=%zu:2,%s", 1700000000 + i, i, m.size(), m.size() + lines,
                      i % 3 ? "S" : "");
        std::ofstream(root + "/cur/" + name, std::ios::binary) << m;
    }
    std::printf("fixture      %d messages written in %.0f ms\n", n, ms_since(t0));

    mailstore::MaildirOptions opt;
    opt.root = root;
    {
        // A first SELECT as imapd does it: answered early, on the build's thread.
        auto store = mailstore::open_maildir_store(opt);
        t0 = Clock::now();
        cpu0 = cpu_ms();
        double answer_ms = -1, answer_cpu = -1;
        mailstore::EarlyAnswer early = [&](const mailstore::OpenAnswer&) {
            answer_ms = ms_since(t0);
            answer_cpu = cpu_since();
        };
        auto mb = (*store)->open("INBOX", false, true, &early);
        if (!mb) {
            std::fprintf(stderr, "open: %s\n", mb.message().c_str());
            return 1;
        }
        std::printf("cold-open-early answered in %.1f ms, cpu %.1f ms; built in %.1f ms, cpu %.1f ms\n", answer_ms,
                    answer_cpu, ms_since(t0), cpu_since());
        ::unlink((root + "/tern-index.lmdb").c_str());
        ::unlink((root + "/tern-index.lmdb-lock").c_str());
    }
    {
        auto store = mailstore::open_maildir_store(opt);
        t0 = Clock::now();
    cpu0 = cpu_ms();
        auto mb = (*store)->open("INBOX", false);
        if (!mb) {
            std::fprintf(stderr, "open: %s\n", mb.message().c_str());
            return 1;
        }
        std::printf("cold-open    %.1f ms, cpu %.1f ms (%zu messages indexed)\n", ms_since(t0), cpu_since(), (*mb)->view().size());
        std::vector<uint32_t> all;
        for (const auto& e : (*mb)->view()) all.push_back(e.uid);
        t0 = Clock::now();
        cpu0 = cpu_ms();
        size_t total = 0;
        auto filled = (*mb)->for_each(all, mailstore::kFieldEnvelope, [&](const mailstore::MessageData& d) { total += d.envelope.size(); });
        std::printf("cold-envelope %.1f ms, cpu %.1f ms (every file read and parsed once)%s\n", ms_since(t0), cpu_since(),
                    filled ? "" : " FAILED");
    }
    {
        // A SELECT right after the first one: cur/'s mtime is too recent to trust.
        ::utime((root + "/cur").c_str(), nullptr);
        auto store = mailstore::open_maildir_store(opt);
        (void)(*store)->open("INBOX", false);
        auto again = mailstore::open_maildir_store(opt);
        t0 = Clock::now();
        cpu0 = cpu_ms();
        auto mb = (*again)->open("INBOX", false);
        std::printf("reopen-fresh %.1f ms, cpu %.1f ms%s\n", ms_since(t0), cpu_since(), mb ? "" : " FAILED");
    }
    // Let cur/'s mtime age past the 1 s trust window, as it would on a real server.
    ::utime((root + "/cur").c_str(), nullptr);
    struct stat st {};
    ::stat((root + "/cur").c_str(), &st);
    struct utimbuf old{st.st_atime - 10, st.st_mtime - 10};
    ::utime((root + "/cur").c_str(), &old);
    {
        auto store = mailstore::open_maildir_store(opt);
        (void)(*store)->open("INBOX", false);  // records the aged mtime
    }
    auto store = mailstore::open_maildir_store(opt);
    t0 = Clock::now();
    cpu0 = cpu_ms();
    auto mb = (*store)->open("INBOX", false);
    if (!mb) return 1;
    std::printf("warm-open    %.1f ms, cpu %.1f ms\n", ms_since(t0), cpu_since());
    auto& box = **mb;

    t0 = Clock::now();
    cpu0 = cpu_ms();
    size_t seen = 0;
    for (const auto& e : box.view()) seen += (e.flags & mailstore::kSeen) != 0;
    std::printf("flags        %.2f ms (%zu seen)\n", ms_since(t0), seen);

    std::vector<uint32_t> uids;
    for (const auto& e : box.view()) uids.push_back(e.uid);
    size_t bytes = 0;
    t0 = Clock::now();
    cpu0 = cpu_ms();
    auto st2 = box.for_each(uids, mailstore::kFieldEnvelope, [&](const mailstore::MessageData& d) { bytes += d.envelope.size(); });
    std::printf("envelope     %.1f ms, cpu %.1f ms (%zu bytes of ENVELOPE)%s\n", ms_since(t0), cpu_since(), bytes, st2 ? "" : " FAILED");

    t0 = Clock::now();
    cpu0 = cpu_ms();
    auto ch = box.refresh();
    std::printf("refresh      %.2f ms (changes: %s)\n", ms_since(t0), ch && ch->any() ? "yes" : "no");

    ::utime((root + "/cur").c_str(), nullptr);
    t0 = Clock::now();
    cpu0 = cpu_ms();
    ch = box.refresh();
    std::printf("rescan       %.1f ms, cpu %.1f ms (changes: %s)\n", ms_since(t0), cpu_since(), ch && ch->any() ? "yes" : "no");

    auto w = maildir::MaildirWriter::create(root);
    (void)w->write(message(n));
    (void)w->commit();
    t0 = Clock::now();
    cpu0 = cpu_ms();
    ch = box.refresh();
    std::printf("deliver+refresh %.1f ms, cpu %.1f ms (new: %zu)\n", ms_since(t0), cpu_since(), ch ? ch->new_uids.size() : 0);

    for (int round = 0; round < 3; ++round) {
        // Aged, as on a server where cur/ last changed a while ago.
        ::stat((root + "/cur").c_str(), &st);
        struct utimbuf aged{st.st_atime - 10, st.st_mtime - 10};
        ::utime((root + "/cur").c_str(), &aged);
        (void)box.refresh();  // records the aged mtime
        auto delivering = mailstore::open_maildir_store(opt);
        mailstore::DeliveryOptions d;
        auto start = (*delivering)->begin_delivery(d);
        if (!start || start->outcome != mailstore::DeliveryStart::Outcome::Write) return 1;
        (void)start->writer->write(message(n + 1 + round));
        if (!start->writer->commit(mailstore::Flags{})) return 1;
        t0 = Clock::now();
        cpu0 = cpu_ms();
        ch = box.refresh();
        std::printf("store-deliver+refresh %.2f ms, cpu %.2f ms (new: %zu)\n", ms_since(t0), cpu_since(),
                    ch ? ch->new_uids.size() : 0);
    }

    auto watcher_store = mailstore::open_maildir_store(opt);
    auto watcher = (*watcher_store)->open("INBOX", false);
    if (!watcher) return 1;
    (void)(*watcher)->refresh();
    for (int round = 0; round < 3; ++round) {
        ::stat((root + "/cur").c_str(), &st);
        struct utimbuf aged{st.st_atime - 10, st.st_mtime - 10};
        ::utime((root + "/cur").c_str(), &aged);
        (void)box.refresh();
        (void)(*watcher)->refresh();
        uint32_t uid = box.view()[static_cast<size_t>(round)].uid;
        (void)box.store_flags(std::vector<uint32_t>{uid}, mailstore::FlagOp::Add, mailstore::Flags{mailstore::kFlagged, {}});
        t0 = Clock::now();
        cpu0 = cpu_ms();
        ch = (*watcher)->refresh();
        std::printf("store+refresh %.2f ms, cpu %.2f ms (flag changes: %zu; another session's STORE)\n", ms_since(t0),
                    cpu_since(), ch ? ch->flag_changes.size() : 0);
    }

    if (!keep) std::filesystem::remove_all(dir);
    else std::printf("kept %s\n", dir.c_str());
    return 0;
}
