// On-disk encoding of the queue's LMDB records and keys.
//
// Values are a compact versioned binary form: one version byte (1), then the
// fields in a fixed order, integers as LEB128 varints (signed ones zigzag
// encoded), strings as a varint length and the bytes.  Decoding is strict:
// a wrong version, a length past the end, an out-of-range value, unknown
// flag bits or trailing bytes make the record invalid (nullopt), so a
// corrupt record is reported, never trusted and never a crash.  A future
// format takes version 2 and keeps reading version 1.
//
// Keys: "env"/"hold" use the queue id; "rcpt" the id followed by the
// recipient index as 4 bytes big-endian (so one message's recipients are
// adjacent and in order); "due" the next_try time as 8 bytes big-endian
// (negative times clamp to 0) followed by the id, so a cursor walks due work
// oldest first.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lib/queue/queue.hpp"

namespace tern::queue::records {

std::string encode_envelope(const Envelope& envelope);    // envelope.id is not stored (it is the key)
std::optional<Envelope> decode_envelope(std::string_view id, std::string_view bytes);

std::string encode_recipient(const Recipient& recipient);  // recipient.index is not stored
std::optional<Recipient> decode_recipient(uint32_t index, std::string_view bytes);

// A whole message (id, envelope, recipients, held, small body), for the
// commit log (commit_log.hpp); decoding is as strict.
std::string encode_message(const Message& message);
std::optional<Message> decode_message(std::string_view bytes);

// A commit log's checkpoint in the "log" database: 8 bytes big-endian.
std::string encode_checkpoint(uint64_t seq);
std::optional<uint64_t> decode_checkpoint(std::string_view bytes);

std::string rcpt_key(std::string_view id, uint32_t index);
// Splits an "rcpt" key; nullopt if it is not id + 4 bytes.
std::optional<std::pair<std::string_view, uint32_t>> split_rcpt_key(std::string_view key);

std::string due_key(int64_t next_try, std::string_view id);
std::optional<std::pair<int64_t, std::string_view>> split_due_key(std::string_view key);

}  // namespace tern::queue::records
