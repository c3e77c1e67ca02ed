// Group commit of Maildir deliveries: see group_commit.hpp.
#include "local-delivery/group_commit.hpp"

#include <cerrno>
#include <cstring>
#include <map>
#include <string_view>

namespace tern::local {
namespace {

// A failure text that ends in the text of ENOSPC or EDQUOT: only the text
// of an error crosses from the pool's threads (errno is per thread).
bool says_full(const std::string& message) {
    for (int err : {ENOSPC, EDQUOT}) {
        std::string_view text = std::strerror(err);
        if (message.size() >= text.size() && message.compare(message.size() - text.size(), text.size(), text) == 0)
            return true;
    }
    return false;
}

}  // namespace

size_t GroupCommit::add(const Identity& owner, std::shared_ptr<mailstore::Store> store,
                        std::unique_ptr<mailstore::MessageWriter> writer, const std::string& dir) {
    staged_.push_back(Staged{owner, std::move(store), std::move(writer), dir, {}});
    return staged_.size() - 1;
}

template <typename Fn>
void GroupCommit::as_each_owner(Fn fn) {
    std::map<std::pair<uid_t, gid_t>, std::vector<Staged*>> owners;
    for (auto& s : staged_) owners[{s.owner.uid, s.owner.gid}].push_back(&s);
    for (auto& entry : owners) {
        std::vector<Staged*>& entries = entry.second;
        AsUser as(entries.front()->owner);
        if (!as.ok()) {
            for (Staged* s : entries)
                if (s->failure) s->failure = make_error("cannot switch to user " + s->owner.name + ": " + as.status().message());
            continue;
        }
        fn(entries);
    }
}

void GroupCommit::commit() {
    if (committed_) return;
    committed_ = true;
    // 1. Every file's data, at once.
    std::vector<sys::SyncPool::Job> jobs;
    for (auto& s : staged_) jobs.push_back(s.writer->data_sync());
    std::vector<Status> synced = pool_.run(std::move(jobs));
    for (size_t i = 0; i < staged_.size(); ++i)
        if (!synced[i]) staged_[i].failure = synced[i];

    // 2. Each store's files into place, as their owner: one index
    // transaction per folder.
    std::vector<sys::SyncPool::Job> syncs;
    as_each_owner([&](const std::vector<Staged*>& entries) {
        std::map<mailstore::Store*, std::vector<mailstore::MessageWriter*>> stores;
        for (Staged* s : entries)
            if (s->failure) stores[s->store.get()].push_back(s->writer.get());
        for (auto& [store, writers] : stores) store->publish(writers, syncs);
    });

    // 3. The folders' directories and indexes, at once.  A failure is kept
    // by the folder's writers (their result()).
    (void)pool_.run(std::move(syncs));
}

DeliveryResult GroupCommit::result(size_t ticket) const {
    const Staged& s = staged_.at(ticket);
    Status failure = s.failure;
    Result<uint32_t> uid = uint32_t{0};
    if (failure) {
        uid = s.writer->result();
        if (!uid) failure = uid.error();
    }
    if (!failure) {
        std::string what = "cannot commit maildir file in " + s.dir + ": " + failure.message();
        if (says_full(failure.message())) return DeliveryResult::defer("4.3.0", what + ": mail system full");
        return DeliveryResult::defer("4.2.0", what);
    }
    if (s.writer->earlier()) return DeliveryResult::sent("already delivered to maildir");
    return DeliveryResult::sent("delivered to maildir");
}

GroupCommit::~GroupCommit() {
    // An unpublished writer removes its tmp file: as its owner, in the owner's directory.
    as_each_owner([](const std::vector<Staged*>& entries) {
        for (Staged* s : entries) s->writer.reset();
    });
    for (auto& s : staged_) s.writer.reset();  // owners we could not switch to: nothing else to do
}

}  // namespace tern::local
