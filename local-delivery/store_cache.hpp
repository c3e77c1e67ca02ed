// The mail stores local-delivery delivered to lately, kept open between
// deliveries: opening a Store and its folder's LMDB index (two files, an
// mmap, a transaction) cost more than writing a small message.  Bounded,
// least recently used first out.  A Store is only ever used with the
// privileges of the owner it was opened for (the key has the uid), and it
// checks its cached indexes against the files at every delivery
// (mailstore: a folder renamed or deleted by imapd is opened afresh).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "lib/core/result.hpp"
#include "lib/mailstore/mailstore.hpp"

namespace tern::local {

class StoreCache {
public:
    explicit StoreCache(size_t capacity) : capacity_(capacity) {}

    // The Store of the Maildir at root for this owner and quota, opened
    // (creating the Maildir) when not cached.  Call as the owner.
    Result<std::shared_ptr<mailstore::Store>> get(uid_t owner, const std::string& root, uint64_t quota);

private:
    struct Entry {
        uid_t owner = 0;
        std::string root;
        uint64_t quota = 0;
        std::shared_ptr<mailstore::Store> store;  // shared with a batch in progress
    };
    size_t capacity_;
    std::list<Entry> entries_;  // most recently used first
};

}  // namespace tern::local
