// The group commit's write-ahead log (see commit_log.hpp for the format).
#include "lib/queue/commit_log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "lib/core/crc32c.hpp"
#include "lib/core/errno_text.hpp"
#include "lib/log/log.hpp"
#include "lib/queue/records.hpp"
#include "lib/sys/files.hpp"

namespace tern::queue {

namespace {

constexpr std::string_view kMagic = "TERNCLG1";

void put_le(char* at, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) at[i] = char(uint8_t(v >> (8 * i)));
}

uint64_t get_le(const char* at, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | uint8_t(at[i]);
    return v;
}

Result<uint64_t> random_u64() {
    uint64_t v = 0;
    if (::getrandom(&v, sizeof v, 0) != ssize_t(sizeof v)) return errno_error("getrandom");
    return v;
}

// A record's messages: each as its length (4 bytes) and encode_message().
std::optional<std::vector<Message>> decode_payload(std::string_view payload) {
    std::vector<Message> out;
    while (!payload.empty()) {
        if (payload.size() < 4) return std::nullopt;
        const uint64_t length = get_le(payload.data(), 4);
        if (length > payload.size() - 4) return std::nullopt;
        auto m = records::decode_message(payload.substr(4, length));
        if (!m) return std::nullopt;
        out.push_back(std::move(*m));
        payload.remove_prefix(4 + length);
    }
    return out;
}

}  // namespace

CommitLog::CommitLog(std::string dir, std::string name, Fd fd, size_t blocks, uint64_t nonce)
    : dir_(std::move(dir)), name_(std::move(name)), fd_(std::move(fd)), blocks_(blocks), nonce_(nonce) {}

CommitLog::~CommitLog() = default;

Result<std::unique_ptr<CommitLog>> CommitLog::create(const std::string& queue_directory, size_t size) {
    if (size < 4 * kBlock || size % kBlock != 0) return Error{"commit log: bad size " + std::to_string(size)};
    auto id = random_u64();
    auto nonce = random_u64();
    if (!id) return id.error();
    if (!nonce) return nonce.error();
    char name[17];
    std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(*id));
    const std::string dir = queue_directory + "/commitlog";
    const std::string staging = dir + "/" + name + ".new", path = dir + "/" + name + ".log";
    // Made under another name and renamed when locked: recovery only opens
    // *.log, so it can never take a log whose owner has not locked it yet.
    Fd fd(::open(staging.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) return errno_error("create " + staging);
    if (::flock(fd.get(), LOCK_EX) != 0) return errno_error("lock " + staging);
    std::string chunk(size_t{1} << 20, '\0');
    Status filled;
    for (size_t offset = 0; offset < size && filled; offset += chunk.size()) {
        size_t n = std::min(chunk.size(), size - offset);
        if (offset == 0) {
            std::memcpy(chunk.data(), kMagic.data(), kMagic.size());
            put_le(chunk.data() + 8, *nonce, 8);
            put_le(chunk.data() + 16, crc32c(std::string_view(chunk.data(), 16)), 4);
        }
        filled = sys::pwrite_all(fd.get(), std::string_view(chunk.data(), n), off_t(offset));
        if (!filled) filled = Error{staging + ": " + filled.message()};
        if (offset == 0) std::fill_n(chunk.data(), kBlock, '\0');
    }
    if (filled && ::fsync(fd.get()) != 0) filled = errno_error("fsync " + staging);
    if (filled && ::rename(staging.c_str(), path.c_str()) != 0) filled = errno_error("rename " + staging);
    if (filled) filled = sys::fsync_dir(dir);  // a record acknowledged must not lose its file
    if (!filled) {
        ::unlink(staging.c_str());
        return filled.error();
    }
    auto log = std::unique_ptr<CommitLog>(new CommitLog(dir, name, std::move(fd), size / kBlock, *nonce));
    // Records are written with O_DIRECT where the file system has it: no
    // page cache copy and no writeback pass in the fdatasync (about a tenth
    // of smtpd's system time per message, docs/performance.md).
    log->direct_ = Fd(::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC));
    return log;
}

size_t CommitLog::place(size_t count) const {
    size_t first = head_ + count <= blocks_ ? head_ : 1;
    if (first + count > blocks_) return 0;
    if (pending_.empty()) return first;
    // The blocks still needed run from the oldest pending record to the end
    // of the newest, around the end of the file when they wrapped.
    const size_t begin = pending_.front().first, end = pending_.back().first + pending_.back().count;
    const bool overlaps = begin < end ? first < end && first + count > begin
                                      : first < end || first + count > begin;
    return overlaps ? 0 : first;
}

Result<CommitLog::Appended> CommitLog::append(const std::vector<const Message*>& messages, size_t from) {
    if (from >= messages.size()) return Error{"commit log: nothing to append"};
    const size_t max_payload = (blocks_ - 1) / 2 * kBlock - kHeaderSize;
    // As many messages as fit one record, each as its length and bytes.
    std::string payload;
    size_t next = from;
    for (; next < messages.size(); ++next) {
        const std::string one = records::encode_message(*messages[next]);
        if (payload.size() + 4 + one.size() > max_payload) {
            if (next == from)
                return Error{messages[next]->envelope.id + ": too large for the commit log (" +
                             std::to_string(one.size()) + " bytes)"};
            break;
        }
        char length[4];
        put_le(length, one.size(), 4);
        payload.append(length, 4).append(one);
    }
    auto seq = write_record(payload);
    if (!seq) return seq.error();
    if (::fdatasync(direct_ ? direct_.get() : fd_.get()) != 0)
        return errno_error("fdatasync " + dir_ + "/" + name_ + ".log");
    return Appended{*seq, next - from};
}

Result<uint64_t> CommitLog::write_record(const std::string& payload) {
    const size_t count = (kHeaderSize + payload.size() + kBlock - 1) / kBlock;
    size_t first;
    uint64_t seq;
    {
        // No room: the store thread is behind.  It frees blocks as LMDB
        // takes batches; a log that stays full means LMDB is stuck.
        std::unique_lock lock(mutex_);
        if (!room_.wait_for(lock, kRoomWait, [&] { return place(count) != 0; }))
            return Error{"commit log full: the queue database is not taking batches"};
        first = place(count);
        seq = next_seq_++;
        pending_.push_back({seq, first, count});  // a failed write's blocks go at the next checkpoint
    }
    head_ = first + count;
    const size_t bytes = count * kBlock;
    if (bytes > buffer_size_) {  // O_DIRECT wants it aligned to the block
        buffer_.reset(static_cast<char*>(std::aligned_alloc(kBlock, bytes)));
        buffer_size_ = buffer_ ? bytes : 0;
        if (!buffer_) return Error{"commit log: out of memory"};
    }
    char* header = buffer_.get();
    std::memset(header, 0, bytes);
    put_le(header, nonce_, 8);
    put_le(header + 8, seq, 8);
    put_le(header + 16, payload.size(), 4);
    put_le(header + 20, crc32c(payload, crc32c(std::string_view(header, 20))), 4);
    std::memcpy(header + kHeaderSize, payload.data(), payload.size());
    if (Status st = sys::pwrite_all(direct_ ? direct_.get() : fd_.get(), std::string_view(header, bytes),
                                    off_t(first * kBlock));
        !st)
        return Error{dir_ + "/" + name_ + ".log: " + st.message()};
    return seq;
}

void CommitLog::checkpointed(uint64_t seq) {
    {
        std::lock_guard lock(mutex_);
        while (!pending_.empty() && pending_.front().seq <= seq) pending_.pop_front();
    }
    room_.notify_all();
}

bool CommitLog::drained() const {
    std::lock_guard lock(mutex_);
    return pending_.empty();
}

Status CommitLog::remove() {
    const std::string path = dir_ + "/" + name_ + ".log";
    if (::unlink(path.c_str()) != 0) return errno_error("unlink " + path);
    return sys::fsync_dir(dir_);
}

Result<std::vector<CommitLog::Record>> CommitLog::read(int fd, uint64_t after) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return errno_error("fstat commit log");
    const size_t size = size_t(st.st_size);
    if (size < 2 * kBlock || size % kBlock != 0) return Error{"not a commit log (size " + std::to_string(size) + ")"};
    std::string data(size, '\0');
    for (size_t done = 0; done < size;) {
        ssize_t n = ::pread(fd, data.data() + done, size - done, off_t(done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return errno_error("read commit log");
        done += size_t(n);
    }
    const char* base = data.data();
    if (std::string_view(base, kMagic.size()) != kMagic ||
        get_le(base + 16, 4) != crc32c(std::string_view(base, 16)))
        return Error{"not a commit log (bad header)"};
    const uint64_t nonce = get_le(base + 8, 8);

    std::vector<Record> records;
    for (size_t block = 1; block < size / kBlock;) {
        const size_t offset = block * kBlock;
        const char* header = base + offset;
        const uint64_t length = get_le(header + 16, 4);
        const bool whole = get_le(header, 8) == nonce && length <= size - offset - kHeaderSize &&
                           get_le(header + 20, 4) ==
                               crc32c(std::string_view(header + kHeaderSize, length),
                                      crc32c(std::string_view(header, 20)));
        if (!whole) {  // free, stale, torn, or inside a record we skipped
            ++block;
            continue;
        }
        block += (kHeaderSize + length + kBlock - 1) / kBlock;
        const uint64_t seq = get_le(header + 8, 8);
        if (seq <= after) continue;
        auto messages = decode_payload(std::string_view(header + kHeaderSize, length));
        if (!messages) {
            log::error("commit log record %llu: whole but undecodable; skipped",
                       static_cast<unsigned long long>(seq));
            continue;
        }
        records.push_back({seq, std::move(*messages)});
    }
    std::sort(records.begin(), records.end(), [](const Record& a, const Record& b) { return a.seq < b.seq; });
    return records;
}

}  // namespace tern::queue
