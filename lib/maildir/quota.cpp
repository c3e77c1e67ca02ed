// Maildir++ quota bookkeeping: see quota.hpp.
#include "lib/maildir/quota.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <memory>
#include <optional>
#include <string_view>

#include "lib/core/errno_text.hpp"
#include "lib/core/fd.hpp"
#include "lib/sys/files.hpp"

namespace tern::maildir {
namespace {

// Maildir++: a maildirsize file past this size is recalculated from scratch.
constexpr size_t kRecalcSize = 5120;

struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
};

// Size from the ",S=<n>" name field, else 0 (unknown).
uint64_t size_from_name(std::string_view name) {
    auto pos = name.find(",S=");
    if (pos == std::string_view::npos) return 0;
    std::string_view digits = name.substr(pos + 3);
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc() || p == digits.data()) return 0;
    return v;
}

Status scan_messages(const std::string& dir, QuotaUsage& usage) {
    std::unique_ptr<DIR, DirCloser> d(::opendir(dir.c_str()));
    if (!d) {
        if (errno == ENOENT) return {};
        return errno_error("opendir " + dir);
    }
    while (struct dirent* e = ::readdir(d.get())) {
        std::string_view name = e->d_name;
        if (name.empty() || name.front() == '.') continue;
        uint64_t size = size_from_name(name);
        if (size == 0) {
            struct stat st {};
            if (::stat((dir + "/" + std::string(name)).c_str(), &st) != 0) continue;  // expunged meanwhile
            if (!S_ISREG(st.st_mode)) continue;
            size = static_cast<uint64_t>(st.st_size);
        }
        usage.bytes += size;
        usage.messages += 1;
    }
    return {};
}

bool parse_i64(std::string_view text, int64_t& out) {
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && p == text.data() + text.size() && !text.empty();
}

std::string quota_line(uint64_t limit_bytes) { return std::to_string(limit_bytes) + "S"; }

// Sum of a maildirsize file, or nullopt when it must be recalculated.
std::optional<QuotaUsage> parse_maildirsize(std::string_view text, uint64_t limit_bytes) {
    if (text.size() > kRecalcSize) return std::nullopt;
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view first = text.substr(0, nl);
    // The first line may also carry a message-count quota ("...S,1000C"); we
    // only enforce bytes, so compare that part.
    auto comma = first.find(',');
    if (first.substr(0, comma) != quota_line(limit_bytes)) return std::nullopt;
    int64_t bytes = 0, messages = 0;
    size_t pos = nl + 1;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) return std::nullopt;  // a torn last line
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        auto sp = line.find(' ');
        int64_t b = 0, m = 0;
        if (sp == std::string_view::npos || !parse_i64(line.substr(0, sp), b)) return std::nullopt;
        std::string_view rest = line.substr(sp + 1);
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        if (!parse_i64(rest, m)) return std::nullopt;
        bytes += b;
        messages += m;
    }
    QuotaUsage u;
    u.bytes = bytes > 0 ? static_cast<uint64_t>(bytes) : 0;
    u.messages = messages > 0 ? static_cast<uint64_t>(messages) : 0;
    return u;
}

}  // namespace

Result<QuotaUsage> scan_usage(const std::string& dir) {
    QuotaUsage usage;
    for (const char* sub : {"/cur", "/new"})
        if (auto s = scan_messages(dir + sub, usage); !s) return s.error();
    std::unique_ptr<DIR, DirCloser> d(::opendir(dir.c_str()));
    if (!d) return errno_error("opendir " + dir);
    while (struct dirent* e = ::readdir(d.get())) {
        std::string_view name = e->d_name;
        // Maildir++ folders are ".Name" directories beside cur/new/tmp.
        if (name.size() < 2 || name.front() != '.' || name == "..") continue;
        std::string folder = dir + "/" + std::string(name);
        struct stat st {};
        if (::stat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        for (const char* sub : {"/cur", "/new"})
            if (auto s = scan_messages(folder + sub, usage); !s) return s.error();
    }
    return usage;
}

Result<QuotaUsage> quota_usage(const std::string& dir, uint64_t limit_bytes) {
    if (limit_bytes == 0) return QuotaUsage{};
    std::string path = dir + "/maildirsize";
    auto text = sys::read_file(path, 64 * 1024);
    if (text) {
        if (auto parsed = parse_maildirsize(*text, limit_bytes)) return *parsed;
    }
    auto usage = scan_usage(dir);
    if (!usage) return usage.error();
    std::string fresh = quota_line(limit_bytes) + "\n" + std::to_string(usage->bytes) + " " +
                        std::to_string(usage->messages) + "\n";
    if (auto s = sys::write_file_atomic(path, fresh, 0600); !s) return s.error();
    return usage;
}

Result<bool> quota_allows(const std::string& dir, uint64_t limit_bytes, uint64_t size) {
    if (limit_bytes == 0) return true;
    auto usage = quota_usage(dir, limit_bytes);
    if (!usage) return usage.error();
    return usage->bytes + size <= limit_bytes;
}

Status quota_record(const std::string& dir, uint64_t limit_bytes, int64_t bytes, int64_t messages) {
    if (limit_bytes == 0) return {};
    std::string path = dir + "/maildirsize";
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        // No file yet: a scan now already counts the new message.
        auto usage = quota_usage(dir, limit_bytes);
        if (!usage) return usage.error();
        return {};
    }
    Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return errno_error("open " + path);
    std::string line = std::to_string(bytes) + " " + std::to_string(messages) + "\n";
    // One write(): O_APPEND keeps concurrent writers' lines whole.
    ssize_t n = ::write(fd.get(), line.data(), line.size());
    if (n != static_cast<ssize_t>(line.size())) return errno_error("append " + path);
    return {};
}

}  // namespace tern::maildir
