// Group-commit benchmark: messages per second through queue::Committer with
// N concurrent submitters, each acting like an SMTP session that writes a
// body, submits it and waits for the commit before sending the next message
// (the 250 after DATA waits for durability, so that is the real pattern).
//
//   queue_commit [--spool DIR] [--seconds S] [--size BYTES] [N ...]
//
// Defaults: a fresh directory under /var/tmp (a real disk, not tmpfs), 3
// seconds per run, 4 KiB bodies, N = 1 and 20.  Prints one line per N:
//   submitters=20 messages=1234 failed=0 seconds=3.00 msgs/s=411.3
#include <event2/event.h>
#include <event2/thread.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "lib/queue/committer.hpp"
#include "lib/queue/queue.hpp"

using namespace tern;
using Clock = std::chrono::steady_clock;

namespace {

struct Run {
    event_base* base;
    queue::Store& store;
    queue::Committer& committer;
    std::string body;
    Clock::time_point deadline;
    int active = 0;
    long committed = 0;
    long failed = 0;

    void next() {
        if (Clock::now() >= deadline) {
            if (--active == 0) event_base_loopbreak(base);
            return;
        }
        std::string id = queue::new_queue_id();
        auto fd = store.create_body(id);
        if (!fd || ::write(fd->get(), body.data(), body.size()) != ssize_t(body.size())) {
            std::fprintf(stderr, "body %s: %s\n", id.c_str(), fd ? std::strerror(errno) : fd.message().c_str());
            std::exit(1);
        }
        queue::Message m;
        m.envelope.id = id;
        m.envelope.sender = "bench@example.org";
        m.envelope.protocol = "ESMTP";
        queue::Recipient r;
        r.address = "sink@example.net";
        m.recipients.push_back(r);
        committer.submit(std::move(m), std::move(*fd), [this](const Status& st) {
            (st ? committed : failed)++;
            next();
        });
    }
};

}  // namespace

int main(int argc, char** argv) {
    std::string spool;
    double seconds = 3;
    size_t size = 4096;
    std::vector<int> counts;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--spool" && i + 1 < argc) spool = argv[++i];
        else if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
        else if (a == "--size" && i + 1 < argc) size = std::strtoul(argv[++i], nullptr, 10);
        else counts.push_back(std::atoi(a.c_str()));
    }
    if (counts.empty()) counts = {1, 20};
    bool temporary = spool.empty();
    if (temporary) {
        char tmpl[] = "/var/tmp/tern-bench-XXXXXX";
        if (!::mkdtemp(tmpl)) return 1;
        spool = tmpl;
    }

    evthread_use_pthreads();
    std::string body;
    while (body.size() < size) body += "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n";
    body.resize(size);

    for (int n : counts) {
        event_base* base = event_base_new();
        auto store = queue::Store::open(spool);
        if (!store) {
            std::fprintf(stderr, "%s\n", store.message().c_str());
            return 1;
        }
        long committed = 0, failed = 0;
        auto start = Clock::now();
        {
            queue::Committer committer(base, **store);
            Run run{base, **store, committer, body, start + std::chrono::duration_cast<Clock::duration>(
                                                         std::chrono::duration<double>(seconds))};
            run.active = n;
            for (int i = 0; i < n; ++i) run.next();
            event_base_dispatch(base);
            committed = run.committed;
            failed = run.failed;
        }
        double took = std::chrono::duration<double>(Clock::now() - start).count();
        std::printf("submitters=%d messages=%ld failed=%ld seconds=%.2f msgs/s=%.1f\n", n, committed, failed,
                    took, committed / took);
        // Empty the queue between runs so each starts alike.
        for (const auto& m : (*store)->list_all()) (void)(*store)->remove(m.envelope.id);
        event_base_free(base);
    }
    if (temporary) std::filesystem::remove_all(spool);
    return 0;
}
