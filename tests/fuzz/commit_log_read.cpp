// Fuzz target: a commit log found after a crash (lib/queue/commit_log.hpp)
// may hold anything -- torn records, stale ones, a disk's garbage.  Reading
// it must never crash, and what it returns must be whole messages.  The
// input is used twice in one file: as the payload of a record with a right
// header and CRC (so that the message decoder sees arbitrary bytes), and
// as raw blocks after it (so that the block scanner does).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "lib/core/crc32c.hpp"
#include "lib/log/log.hpp"
#include "lib/queue/commit_log.hpp"
#include "lib/queue/records.hpp"

using namespace tern;
using namespace tern::queue;

namespace {

void put_le(std::string& out, size_t at, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out[at + size_t(i)] = char(uint8_t(v >> (8 * i)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const bool quiet = [] {  // an undecodable record is reported; not here
        log::init("commit-log-fuzz", "/dev/null");
        return true;
    }();
    (void)quiet;
    constexpr size_t kBlock = CommitLog::kBlock;
    const uint64_t nonce = 0x0123456789abcdefULL;
    std::string_view input(reinterpret_cast<const char*>(data), size);

    std::string file(kBlock, '\0');
    std::memcpy(file.data(), "TERNCLG1", 8);
    put_le(file, 8, nonce, 8);
    put_le(file, 16, crc32c(std::string_view(file.data(), 16)), 4);

    std::string record(CommitLog::kHeaderSize, '\0');
    put_le(record, 0, nonce, 8);
    put_le(record, 8, 1, 8);
    put_le(record, 16, input.size(), 4);
    put_le(record, 20, crc32c(input, crc32c(std::string_view(record.data(), 20))), 4);
    record.append(input);
    record.resize((record.size() + kBlock - 1) / kBlock * kBlock, '\0');
    file += record;
    file.append(input);
    file.resize((file.size() + kBlock - 1) / kBlock * kBlock + kBlock, '\0');

    int fd = ::memfd_create("commit-log-fuzz", MFD_CLOEXEC);
    if (fd < 0) return 0;
    if (::write(fd, file.data(), file.size()) == ssize_t(file.size())) {
        auto records = CommitLog::read(fd, 0);
        if (!records) __builtin_trap();  // the header is right: reading cannot fail
        for (const auto& r : *records)
            for (const auto& m : r.messages) {
                if (!valid_queue_id(m.envelope.id)) __builtin_trap();
                auto again = records::decode_message(records::encode_message(m));
                if (!again || again->envelope.id != m.envelope.id || again->recipients.size() != m.recipients.size() ||
                    again->small_body != m.small_body)
                    __builtin_trap();
            }
    }
    ::close(fd);
    return 0;
}
