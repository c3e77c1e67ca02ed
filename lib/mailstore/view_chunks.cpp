// The packed view's chunks: encoding, the per-transaction delta, reading
// and rebuilding.  See view_chunks.hpp.
#include "lib/mailstore/view_chunks.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

#include "lib/mailstore/mailstore.hpp"

namespace tern::mailstore {
namespace {

constexpr uint8_t kChunkVersion = 1;
constexpr size_t kEntrySize = 4 + 1 + 8 + 8 + 8;

std::string chunk_key(uint32_t chunk) { return uid_key(chunk); }

void encode_entry(std::string& out, const PackedEntry& e) {
    char buf[kEntrySize];
    std::memcpy(buf, &e.uid, 4);
    std::memcpy(buf + 4, &e.flags, 1);
    std::memcpy(buf + 5, &e.keywords, 8);
    std::memcpy(buf + 13, &e.modseq, 8);
    std::memcpy(buf + 21, &e.crlf_size, 8);
    out.append(buf, kEntrySize);
}

PackedEntry decode_entry(const char* p) {
    PackedEntry e;
    std::memcpy(&e.uid, p, 4);
    std::memcpy(&e.flags, p + 4, 1);
    std::memcpy(&e.keywords, p + 5, 8);
    std::memcpy(&e.modseq, p + 13, 8);
    std::memcpy(&e.crlf_size, p + 21, 8);
    return e;
}

bool well_formed(std::string_view chunk) {
    return !chunk.empty() && static_cast<uint8_t>(chunk[0]) == kChunkVersion && (chunk.size() - 1) % kEntrySize == 0;
}

std::string encode_chunk(const std::vector<PackedEntry>& entries) {
    std::string out;
    out.reserve(1 + entries.size() * kEntrySize);
    out += static_cast<char>(kChunkVersion);
    for (const auto& e : entries) encode_entry(out, e);
    return out;
}

// Asks the kernel to read these parts of the map now, all at once
// (asynchronously): a cold chunk is then one read, not a fault per page.
void prefetch(const std::vector<std::string_view>& ranges) {
    static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    uintptr_t run_begin = 0, run_end = 0;
    auto flush = [&] {
        if (run_end > run_begin)
            (void)::madvise(reinterpret_cast<void*>(run_begin), run_end - run_begin, MADV_WILLNEED);
    };
    for (auto r : ranges) {
        uintptr_t b = reinterpret_cast<uintptr_t>(r.data()) & ~(page - 1);
        uintptr_t e = (reinterpret_cast<uintptr_t>(r.data()) + r.size() + page - 1) & ~(page - 1);
        if (b <= run_end && e >= run_begin && run_end > run_begin) {
            run_begin = std::min(run_begin, b);
            run_end = std::max(run_end, e);
            continue;
        }
        flush();
        run_begin = b;
        run_end = e;
    }
    flush();
}

}  // namespace

PackedEntry packed_entry(uint32_t uid, const MessageRecord& r) {
    return {uid, r.flags, r.keywords, r.modseq, r.crlf_size};
}

Status ViewDelta::flush(lmdb::Txn& txn, lmdb::Dbi view) {
    // By UID, the last change of each UID only (a stable sort keeps their order).
    auto by_uid = [](const auto& a, const auto& b) { return a.first < b.first; };
    if (!std::is_sorted(changes_.begin(), changes_.end(), by_uid))  // new UIDs come in order
        std::stable_sort(changes_.begin(), changes_.end(), by_uid);
    size_t kept = 0;
    for (size_t i = 0; i < changes_.size(); ++i) {
        if (i + 1 < changes_.size() && changes_[i + 1].first == changes_[i].first) continue;
        changes_[kept++] = std::move(changes_[i]);
    }
    changes_.resize(kept);
    auto it = changes_.begin();
    while (it != changes_.end()) {
        uint32_t chunk = it->first / kUidsPerChunk;
        std::string key = chunk_key(chunk);
        std::vector<PackedEntry> entries;
        auto old = txn.get(view, key);
        if (!old) return old.error();
        if (*old && !well_formed(**old)) {
            damaged_ = true;  // its entries are lost: rebuilt from the records at the next open
        } else if (*old) {
            size_t n = ((*old)->size() - 1) / kEntrySize;
            entries.reserve(n + 16);
            for (size_t i = 0; i < n; ++i) entries.push_back(decode_entry((*old)->data() + 1 + i * kEntrySize));
        }
        // Merge this chunk's changes (both lists ascend by UID).
        std::vector<PackedEntry> merged;
        merged.reserve(entries.size() + 16);
        size_t i = 0;
        for (; it != changes_.end() && it->first / kUidsPerChunk == chunk; ++it) {
            while (i < entries.size() && entries[i].uid < it->first) merged.push_back(entries[i++]);
            if (i < entries.size() && entries[i].uid == it->first) ++i;  // replaced or erased
            if (it->second) merged.push_back(*it->second);
        }
        while (i < entries.size()) merged.push_back(entries[i++]);
        if (merged.empty()) {
            if (auto r = txn.del(view, key); !r) return r.error();
        } else if (auto s = txn.put(view, key, encode_chunk(merged)); !s) {
            return s;
        }
    }
    return {};
}

Status for_each_packed(const lmdb::Txn& txn, lmdb::Dbi view, Prefetch how,
                       const std::function<bool(const PackedEntry&)>& fn) {
    auto cur = txn.cursor(view);
    if (!cur) return cur.error();
    auto walk = [&](std::string_view c) {
        size_t n = (c.size() - 1) / kEntrySize;
        for (size_t i = 0; i < n; ++i)
            if (!fn(decode_entry(c.data() + 1 + i * kEntrySize))) return false;
        return true;
    };
    std::vector<std::string_view> chunks;
    auto e = cur->first();
    for (; e && *e; e = cur->next()) {
        // The value points into the map: nothing of it is read yet.
        if (!well_formed((*e)->value)) return make_error("index: corrupt view chunk");
        if (how == Prefetch::All) {
            chunks.push_back((*e)->value);
            continue;
        }
        if (how == Prefetch::EachChunk) prefetch({(*e)->value});
        if (!walk((*e)->value)) return {};
    }
    if (!e) return e.error();
    prefetch(chunks);
    for (auto c : chunks)
        if (!walk(c)) return {};
    return {};
}

Result<FirstUnseen> find_first_unseen(const lmdb::Txn& txn, lmdb::Dbi view, uint32_t from_uid, uint64_t below) {
    auto cur = txn.cursor(view);
    if (!cur) return cur.error();
    auto e = cur->seek(chunk_key(from_uid / kUidsPerChunk));
    for (; e && *e; e = cur->next()) {
        std::string_view c = (*e)->value;
        if (!well_formed(c)) return make_error("index: corrupt view chunk");
        size_t n = (c.size() - 1) / kEntrySize;
        for (size_t i = 0; i < n; ++i) {
            PackedEntry entry = decode_entry(c.data() + 1 + i * kEntrySize);
            if (entry.uid < from_uid) continue;
            if (!(entry.flags & kSeen)) return FirstUnseen{entry.uid, below};
            ++below;
        }
    }
    if (!e) return e.error();
    return FirstUnseen{0, below};
}

Result<FirstUnseen> update_first_unseen(const lmdb::Txn& txn, lmdb::Dbi view, FirstUnseen was, const ViewDelta& delta,
                                        uint32_t old_uidnext, uint64_t records) {
    const auto& changes = delta.changes();
    if (was.uid == 0) {
        // None was unseen: the first unseen is the lowest new message
        // without \Seen, and every record after it is new too.
        for (size_t i = 0; i < changes.size(); ++i) {
            const auto& [uid, entry] = changes[i];
            if (!entry || (entry->flags & kSeen)) continue;
            if (uid < old_uidnext) return find_first_unseen(txn, view, 0, 0);  // an old one lost \Seen
            uint64_t from_here = 0;
            for (size_t j = i; j < changes.size(); ++j) from_here += changes[j].second ? 1 : 0;
            return FirstUnseen{uid, records - std::min(records, from_here)};
        }
        return FirstUnseen{0, records};
    }
    for (const auto& [uid, entry] : changes) {
        if (uid > was.uid) break;  // after it: it stays the first
        bool seen = entry && (entry->flags & kSeen);
        if (uid < was.uid) {
            if (!entry) was.below -= std::min<uint64_t>(was.below, 1);
            else if (!seen) return find_first_unseen(txn, view, 0, 0);
            continue;
        }
        if (!entry || seen) return find_first_unseen(txn, view, was.uid, was.below);  // it was read or expunged
    }
    return was;
}

Status prefetch_packed(const lmdb::Txn& txn, lmdb::Dbi view) {
    auto cur = txn.cursor(view);
    if (!cur) return cur.error();
    std::vector<std::string_view> chunks;
    auto e = cur->first();
    for (; e && *e; e = cur->next()) chunks.push_back((*e)->value);
    if (!e) return e.error();
    prefetch(chunks);
    return {};
}

Status rebuild_packed(lmdb::Txn& txn, lmdb::Dbi msgs, lmdb::Dbi view) {
    if (auto s = txn.clear(view); !s) return s;
    auto cur = txn.cursor(msgs);
    if (!cur) return cur.error();
    std::vector<PackedEntry> chunk;
    uint32_t chunk_no = 0;
    auto put_chunk = [&]() -> Status {
        if (chunk.empty()) return {};
        auto s = txn.put(view, chunk_key(chunk_no), encode_chunk(chunk), MDB_APPEND);
        chunk.clear();
        return s;
    };
    auto e = cur->first();
    for (; e && *e; e = cur->next()) {
        auto rec = decode_record((*e)->value);
        if (!rec) continue;  // a corrupt record is absent for the view too
        uint32_t uid = key_uid((*e)->key);
        if (uid / kUidsPerChunk != chunk_no) {
            if (auto s = put_chunk(); !s) return s;
            chunk_no = uid / kUidsPerChunk;
        }
        chunk.push_back(packed_entry(uid, *rec));
    }
    if (!e) return e.error();
    return put_chunk();
}

}  // namespace tern::mailstore
