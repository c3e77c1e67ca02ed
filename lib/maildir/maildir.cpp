// MaildirWriter and Maildir helpers: see maildir.hpp.
#include "lib/maildir/maildir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>

#include "lib/core/errno_text.hpp"
#include "lib/sys/files.hpp"
#include "lib/sys/process.hpp"

namespace tern::maildir {
namespace {

// Per-process delivery counter: the Q<seq> part that keeps names unique
// when one process delivers several messages in the same microsecond.
std::atomic<unsigned long> delivery_sequence{0};

std::string read_host_part() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == 0) return "localhost";
    std::string out;
    for (const char* p = host; *p; ++p) {
        if (*p == '/') out += "\\057";
        else if (*p == ':') out += "\\072";
        else out += *p;
    }
    return out;
}

// Read once: one gethostname per process, not per delivery.
const std::string& host_part() {
    static const std::string host = read_host_part();
    return host;
}

Status make_dir(const std::string& path) {
    if (::mkdir(path.c_str(), 0700) == 0 || errno == EEXIST) return {};
    return errno_error("mkdir " + path);
}

bool bad_component(std::string_view part) {
    if (part.empty() || part == "." || part == ".." || part.front() == '.') return true;
    for (unsigned char c : part)
        if (c < 0x20 || c == 0x7f || c == '/') return true;
    return false;
}

}  // namespace

Status ensure_maildir(const std::string& dir) {
    struct stat st {};
    if (::stat((dir + "/tmp").c_str(), &st) == 0 && ::stat((dir + "/new").c_str(), &st) == 0 &&
        ::stat((dir + "/cur").c_str(), &st) == 0)
        return {};
    if (auto s = sys::mkdir_p(dir, 0700); !s) return s;
    for (const char* sub : {"/tmp", "/new", "/cur"})
        if (auto s = make_dir(dir + sub); !s) return s;
    // The new directories must survive a crash before we report a delivery into them.
    if (auto s = sys::fsync_dir(dir); !s) return s;
    return sys::fsync_dir(sys::dir_name(dir));
}

std::string unique_name() {
    struct timeval tv {};
    ::gettimeofday(&tv, nullptr);
    unsigned long seq = ++delivery_sequence;
    return std::to_string(tv.tv_sec) + ".M" + std::to_string(tv.tv_usec) + "P" + std::to_string(sys::own_pid()) +
           "Q" + std::to_string(seq) + "." + host_part();
}

std::string delivery_prefix(const DeliveryKey& key) {
    return std::to_string(key.arrival) + "." + key.queue_id + "_" + std::to_string(key.recipient) + ".";
}

std::string delivery_name(const DeliveryKey& key) { return delivery_prefix(key) + host_part(); }

namespace {

// The first name in DIR/new/ or DIR/cur/ that `match` accepts, as a path.
template <typename Match>
Result<std::string> find_file(const std::string& dir, Match match) {
    for (const char* sub : {"/new", "/cur"}) {
        std::string path = dir + sub;
        DIR* d = ::opendir(path.c_str());
        if (!d) {
            if (errno == ENOENT) continue;
            return errno_error("open directory " + path);
        }
        std::string found;
        while (dirent* e = ::readdir(d)) {
            if (match(std::string_view(e->d_name))) {
                found = path + "/" + e->d_name;
                break;
            }
        }
        ::closedir(d);
        if (!found.empty()) return found;
    }
    return std::string();
}

}  // namespace

Result<std::string> find_named(const std::string& dir, std::string_view base, bool any_suffix) {
    return find_file(dir, [&](std::string_view name) {
        if (name.size() < base.size() || name.compare(0, base.size(), base) != 0) return false;
        if (any_suffix) return name.size() > base.size();
        return name.size() == base.size() || name[base.size()] == ',' || name[base.size()] == ':';
    });
}

Result<std::string> find_delivered(const std::string& dir, const DeliveryKey& key) {
    return find_named(dir, delivery_prefix(key), true);
}

MaildirWriter::MaildirWriter(MaildirWriter&&) noexcept = default;
MaildirWriter& MaildirWriter::operator=(MaildirWriter&& other) noexcept {
    if (this != &other) {
        abort();
        dir_ = std::move(other.dir_);
        name_ = std::move(other.name_);
        final_name_ = std::move(other.final_name_);
        fd_ = std::move(other.fd_);
        size_ = other.size_;
        lines_ = other.lines_;
        other.name_.clear();
    }
    return *this;
}
MaildirWriter::~MaildirWriter() { abort(); }

Result<MaildirWriter> MaildirWriter::create(const std::string& dir, std::string final_name) {
    MaildirWriter w;
    w.dir_ = dir;
    w.final_name_ = std::move(final_name);
    for (int attempt = 0; attempt < 5; ++attempt) {
        w.name_ = unique_name();
        std::string path = dir + "/tmp/" + w.name_;
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            w.fd_.reset(fd);
            return w;
        }
        if (errno != EEXIST) {
            w.name_.clear();
            return errno_error("create " + path);
        }
    }
    w.name_.clear();
    return make_error("create in " + dir + "/tmp: no unique name after 5 attempts");
}

Status MaildirWriter::write(std::string_view data) {
    if (!fd_) return make_error("maildir writer is closed");
    if (auto s = sys::write_all(fd_.get(), data); !s) return make_error("write " + dir_ + "/tmp/" + name_ + ": " + s.message());
    size_ += data.size();
    lines_ += static_cast<uint64_t>(std::count(data.begin(), data.end(), '\n'));
    return {};
}

Result<DeliveredFile> MaildirWriter::commit() {
    if (!fd_ || name_.empty()) return make_error("maildir writer is closed");
    std::string tmp_path = dir_ + "/tmp/" + name_;
    // The data must be on disk before the name in new/ makes it visible.
    if (::fsync(fd_.get()) != 0) {
        auto err = errno_error("fsync " + tmp_path);
        abort();
        return err;
    }
    if (::close(fd_.release()) != 0) {
        auto err = errno_error("close " + tmp_path);
        abort();
        return err;
    }
    DeliveredFile out;
    out.size = size_;
    out.crlf_size = crlf_size();
    std::string suffix = ",S=" + std::to_string(out.size) + ",W=" + std::to_string(out.crlf_size);
    std::string base = final_name_.empty() ? name_ : final_name_;
    for (int attempt = 0; attempt < 5; ++attempt) {
        out.path = dir_ + "/new/" + base + suffix;
        if (::link(tmp_path.c_str(), out.path.c_str()) == 0) break;
        if (errno == EEXIST && !final_name_.empty()) {
            // This delivery, done by an earlier attempt whose result was
            // lost.  Its link may not have been synced yet: sync new/ now.
            out.earlier = true;
            break;
        }
        if (errno != EEXIST || attempt == 4) {
            auto err = errno_error("link " + tmp_path + " to " + out.path);
            abort();
            return err;
        }
        base = unique_name();
    }
    ::unlink(tmp_path.c_str());
    name_.clear();
    if (auto s = sys::fsync_dir(dir_ + "/new"); !s) {
        // Not known to be durable: take it back rather than report a delivery.
        if (!out.earlier) ::unlink(out.path.c_str());
        return s.error();
    }
    return out;
}

void MaildirWriter::abort() {
    fd_.reset();
    if (!name_.empty()) {
        ::unlink((dir_ + "/tmp/" + name_).c_str());
        name_.clear();
    }
}

Result<std::string> virtual_maildir(const std::string& mail_directory, std::string_view address,
                                    const std::string& home) {
    auto at = address.rfind('@');
    if (at == std::string_view::npos) return make_error("virtual address without a domain: " + std::string(address));
    std::string user(address.substr(0, at)), domain(address.substr(at + 1));
    for (auto& c : user) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (auto& c : domain) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (bad_component(user) || bad_component(domain))
        return make_error("address cannot name a mailbox directory: " + std::string(address));
    if (!home.empty()) {
        if (home.front() != '/') return make_error("home of " + std::string(address) + " is not absolute");
        return home + "/Maildir";
    }
    return mail_directory + "/" + domain + "/" + user;
}

}  // namespace tern::maildir
