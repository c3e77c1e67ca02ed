// Open mail stores between deliveries: see store_cache.hpp.
#include "local-delivery/store_cache.hpp"

#include "lib/mailstore/maildir_store.hpp"

namespace tern::local {

Result<std::shared_ptr<mailstore::Store>> StoreCache::get(uid_t owner, const std::string& root, uint64_t quota) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->owner != owner || it->root != root || it->quota != quota) continue;
        entries_.splice(entries_.begin(), entries_, it);
        return entries_.front().store;
    }
    mailstore::MaildirOptions options;
    options.root = root;
    options.quota_bytes = quota;
    auto store = mailstore::open_maildir_store(options);
    if (!store) return store.error();
    if (entries_.size() >= capacity_) entries_.pop_back();
    entries_.push_front(Entry{owner, root, quota, std::shared_ptr<mailstore::Store>(std::move(*store))});
    return entries_.front().store;
}

}  // namespace tern::local
