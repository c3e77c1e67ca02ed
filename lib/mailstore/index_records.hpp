// The records of a folder's LMDB index and how they are encoded.
//
//   meta      "uidvalidity" u32, "uidnext" u32, "modseq" u64 (HIGHESTMODSEQ),
//             "new_mtime"/"cur_mtime" i64 ns (directory state last scanned,
//             0 = rescan), "cur_dirty" i64 ns ×2 (cur/'s mtime after our
//             moves from new/, and the first such move not checked since),
//             "keywords" (names, NUL-separated),
//             "vanished_floor" u64 (older expunges forgotten)
//   msgs      uid (u32 big-endian, so cursor order = UID order) → MessageRecord
//   names     file base name → uid (u32)
//   cache     uid → CacheRecord (ENVELOPE, BODYSTRUCTURE, BODY, header lines)
//   vanished  uid → modseq of its expunge (QRESYNC)
//   view      the packed view: chunks of UID, flags, keywords, modseq
//             (view_chunks.hpp), what loading a session's view reads
//
// msgs records are small and fixed-layout; the large cached strings live
// apart in `cache`, written when a file is first read (a new
// folder of other software's files is indexed from the directory listing
// alone; ENVELOPE and friends are parsed at the first FETCH that wants them).  Integers are stored in host byte order
// (the index is local to the host) except keys, which are big-endian.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tern::mailstore {

struct MessageRecord {
    uint64_t modseq = 0;
    uint64_t keywords = 0;
    uint64_t size = 0;
    uint64_t crlf_size = 0;
    int64_t internal_date = 0;
    int16_t date_offset = 0;  // minutes east of UTC
    uint8_t flags = 0;
    // False until the file was read: its `cache` entry and internal_date are
    // filled on first need (sizes come from the ,S=/,W= name fields).
    bool cached = true;
    std::string_view filename;  // current name in cur/ (points into the encoded record)
};

std::string encode_record(const MessageRecord& r);
// The same into `out` (replaced): one buffer for many records.
void encode_record(const MessageRecord& r, std::string& out);
// nullopt for a record that is too short (corrupt): treated as absent.
std::optional<MessageRecord> decode_record(std::string_view data);

struct CacheRecord {
    std::string_view envelope, bodystructure, body, headers;
};
std::string encode_cache(const CacheRecord& c);
std::optional<CacheRecord> decode_cache(std::string_view data);

// The cache strings of one message, built by parsing it (lib/mime).
struct ParsedCache {
    std::string envelope, bodystructure, body, headers;
    CacheRecord view() const { return {envelope, bodystructure, body, headers}; }
};
ParsedCache build_cache(std::string_view message);

std::string uid_key(uint32_t uid);
uint32_t key_uid(std::string_view key);

}  // namespace tern::mailstore
