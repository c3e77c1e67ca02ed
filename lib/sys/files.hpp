// File helpers with the durability rules tern relies on: whole writes,
// atomic replacement (tmp file, fsync, rename, fsync of the directory) and
// directory creation.  Everything reports errors as values naming the path.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

namespace tern::sys {

// write() until everything is written (retries EINTR and short writes).
Status write_all(int fd, std::string_view data);
// The same at an offset (pwrite), the file position untouched.
Status pwrite_all(int fd, std::string_view data, off_t offset);
// Reads exactly n bytes at offset (pread; retries EINTR and short reads):
// false on an error or when the file ends before them.
bool pread_exactly(int fd, char* buf, size_t n, off_t offset);
// An anonymous in-memory file (memfd) holding data, sealed against writes
// and positioned at 0: something to hand out as a read-only fd (pread,
// fstat, passing over a socket) for bytes that live elsewhere.
Result<Fd> memory_file(const char* name, std::string_view data);
// Reads a whole regular file; max_size guards against reading a huge file.
Result<std::string> read_file(const std::string& path, size_t max_size = 64 * 1024 * 1024);
// Replaces path with data atomically and durably: path.tmp.PID, fsync,
// rename over path, fsync of the directory.  Readers see old or new, never half.
Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644);
// fsync() of a directory, so a created/renamed entry in it survives a crash.
Status fsync_dir(const std::string& dir);
// The directory part of a path ("a/b/c" → "a/b", "c" → ".", "/c" → "/").
std::string dir_name(const std::string& path);
// mkdir -p; existing directories are fine, mode applies to created ones.
Status mkdir_p(const std::string& path, mode_t mode = 0755);
Status set_nonblocking(int fd, bool on = true);
Status set_cloexec(int fd, bool on = true);

}  // namespace tern::sys
