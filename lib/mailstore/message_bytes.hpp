// A message file's bytes in memory, for a parse or a search: read whole
// with one pread when small, mapped read-only when big.  For the usual
// mail of a few KB, mmap() and munmap() cost more than the copy (a third
// of a SEARCH BODY's time, a quarter of a first FETCH ENVELOPE's), and
// munmap() interrupts every CPU that runs one of the process's threads;
// a big message is never copied.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "lib/core/result.hpp"

namespace tern::mailstore {

class MessageBytes {
public:
    // Messages up to this size are read, bigger ones mapped.
    static constexpr size_t kReadWholeMax = 256 * 1024;

    // The first `size` bytes of the file open as fd (the caller keeps the
    // fd); path names it in errors.  An error when the file is shorter.
    static Result<MessageBytes> read(int fd, size_t size, const std::string& path);

    MessageBytes() = default;
    ~MessageBytes() { unmap(); }
    MessageBytes(MessageBytes&& o) noexcept
        : copy_(std::move(o.copy_)), map_(std::exchange(o.map_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    MessageBytes& operator=(MessageBytes&& o) noexcept {
        if (this != &o) {
            unmap();
            copy_ = std::move(o.copy_);
            map_ = std::exchange(o.map_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    MessageBytes(const MessageBytes&) = delete;
    MessageBytes& operator=(const MessageBytes&) = delete;

    std::string_view bytes() const {
        return map_ ? std::string_view(static_cast<const char*>(map_), size_) : std::string_view(copy_);
    }

private:
    void unmap();
    std::string copy_;
    void* map_ = nullptr;  // when mapped
    size_t size_ = 0;      // of the map
};

}  // namespace tern::mailstore
