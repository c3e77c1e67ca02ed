// A message file's bytes in memory: see message_bytes.hpp.
#include "lib/mailstore/message_bytes.hpp"

#include <sys/mman.h>

#include <cerrno>

#include "lib/core/errno_text.hpp"
#include "lib/sys/files.hpp"

namespace tern::mailstore {

Result<MessageBytes> MessageBytes::read(int fd, size_t size, const std::string& path) {
    MessageBytes m;
    if (size == 0) return m;
    if (size <= kReadWholeMax) {
        m.copy_.resize(size);
        errno = 0;
        if (!sys::pread_exactly(fd, m.copy_.data(), size, 0))
            return errno ? errno_error("read " + path) : make_error("read " + path + ": shorter than it was");
        return m;
    }
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return errno_error("mmap " + path);
    m.map_ = map;
    m.size_ = size;
    return m;
}

void MessageBytes::unmap() {
    if (map_) ::munmap(map_, size_);
    map_ = nullptr;
}

}  // namespace tern::mailstore
