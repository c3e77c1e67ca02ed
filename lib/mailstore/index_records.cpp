// Index record encoding and the cache builder: see index_records.hpp.
#include "lib/mailstore/index_records.hpp"

#include <cstring>

#include "lib/mailstore/mailstore.hpp"
#include "lib/mime/imap_format.hpp"
#include "lib/mime/message.hpp"

namespace tern::mailstore {
namespace {

constexpr size_t kFixed = 8 * 5 + 2 + 1 + 1 + 1;  // five u64/i64, i16, flags, cached, version
constexpr uint8_t kVersion = 2;

template <typename T>
void put(std::string& out, T v) {
    char buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));
    out.append(buf, sizeof(T));
}

template <typename T>
T get(const char* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

}  // namespace

std::string encode_record(const MessageRecord& r) {
    std::string out;
    encode_record(r, out);
    return out;
}

void encode_record(const MessageRecord& r, std::string& out) {
    out.clear();
    out.reserve(kFixed + r.filename.size());
    put(out, r.modseq);
    put(out, r.keywords);
    put(out, r.size);
    put(out, r.crlf_size);
    put(out, r.internal_date);
    put(out, r.date_offset);
    put(out, r.flags);
    put(out, static_cast<uint8_t>(r.cached ? 1 : 0));
    put(out, kVersion);
    out += r.filename;
}

std::optional<MessageRecord> decode_record(std::string_view d) {
    if (d.size() < kFixed || static_cast<uint8_t>(d[kFixed - 1]) != kVersion) return std::nullopt;
    MessageRecord r;
    const char* p = d.data();
    r.modseq = get<uint64_t>(p);
    r.keywords = get<uint64_t>(p + 8);
    r.size = get<uint64_t>(p + 16);
    r.crlf_size = get<uint64_t>(p + 24);
    r.internal_date = get<int64_t>(p + 32);
    r.date_offset = get<int16_t>(p + 40);
    r.flags = get<uint8_t>(p + 42);
    r.cached = get<uint8_t>(p + 43) != 0;
    r.filename = d.substr(kFixed);
    return r;
}

std::string encode_cache(const CacheRecord& c) {
    std::string out;
    out.reserve(16 + c.envelope.size() + c.bodystructure.size() + c.body.size() + c.headers.size());
    for (auto s : {c.envelope, c.bodystructure, c.body, c.headers}) put(out, static_cast<uint32_t>(s.size()));
    for (auto s : {c.envelope, c.bodystructure, c.body, c.headers}) out += s;
    return out;
}

std::optional<CacheRecord> decode_cache(std::string_view d) {
    if (d.size() < 16) return std::nullopt;
    uint64_t len[4];
    uint64_t total = 16;
    for (int i = 0; i < 4; ++i) total += len[i] = get<uint32_t>(d.data() + 4 * i);
    if (total != d.size()) return std::nullopt;
    CacheRecord c;
    size_t pos = 16;
    std::string_view* fields[] = {&c.envelope, &c.bodystructure, &c.body, &c.headers};
    for (int i = 0; i < 4; ++i) {
        *fields[i] = d.substr(pos, len[i]);
        pos += len[i];
    }
    return c;
}

ParsedCache build_cache(std::string_view message) {
    ParsedCache c;
    mime::Part root = mime::parse_message(message);
    c.envelope = mime::envelope(root, message);
    c.bodystructure = mime::bodystructure(root, message, true);
    c.body = mime::bodystructure(root, message, false);
    auto header = mime::parse_header(message.substr(0, root.body_begin));
    for (const auto& f : header.fields) {
        for (auto want : cached_header_fields()) {
            if (mime::iequals(f.name, want)) {
                for (char ch : f.raw)
                    if (ch != '\r') c.headers += ch;
                if (c.headers.empty() || c.headers.back() != '\n') c.headers += '\n';
                break;
            }
        }
    }
    return c;
}

std::string uid_key(uint32_t uid) {
    char k[4] = {static_cast<char>(uid >> 24), static_cast<char>(uid >> 16), static_cast<char>(uid >> 8),
                 static_cast<char>(uid)};
    return std::string(k, 4);
}

uint32_t key_uid(std::string_view key) {
    if (key.size() != 4) return 0;
    auto b = [&](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(key[static_cast<size_t>(i)])); };
    return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

}  // namespace tern::mailstore
