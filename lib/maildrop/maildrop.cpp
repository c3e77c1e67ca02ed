// The maildrop file format: envelope, content, checked trailer (see maildrop.hpp).
#include "lib/maildrop/maildrop.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

#include "lib/core/errno_text.hpp"

namespace tern::maildrop {

namespace {

bool clean_value(std::string_view v) {
    return v.find('\n') == std::string_view::npos && v.find('\0') == std::string_view::npos &&
           v.find('\r') == std::string_view::npos;
}

template <typename T>
bool parse_number(std::string_view text, T& out) {
    if (text.empty() || text.size() > 20) return false;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size();
}

Status write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("write maildrop file");
        }
        bytes.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

std::string unique_name() {
    static std::mt19937_64 rng{std::random_device{}()};
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    char buf[80];
    std::snprintf(buf, sizeof buf, "%016llx.%d.%08llx", static_cast<unsigned long long>(us),
                  static_cast<int>(::getpid()), static_cast<unsigned long long>(rng() & 0xffffffffULL));
    return buf;
}

}  // namespace

void Checksum::update(std::string_view bytes) {
    for (unsigned char c : bytes) {
        h_ ^= c;
        h_ *= 0x100000001b3ULL;
    }
}

Result<std::string> format_envelope(const Envelope& e) {
    if (e.recipients.empty()) return make_error("maildrop: no recipients");
    if (e.recipients.size() > kMaxRecipients) return make_error("maildrop: too many recipients");
    if (!clean_value(e.sender) || !clean_value(e.fullname))
        return make_error("maildrop: sender or full name contains a line break or NUL");
    std::string out;
    out += kMagic;
    out += "\ntime " + std::to_string(e.time) + "\nuid " + std::to_string(e.uid) + "\nsender " + e.sender +
           "\nfullname " + e.fullname + "\n";
    if (e.notify > 15) return make_error("maildrop: bad notify value");
    if (!e.ret.empty() && e.ret != "FULL" && e.ret != "HDRS") return make_error("maildrop: bad ret value");
    if (!clean_value(e.envid) || e.envid.size() > 100) return make_error("maildrop: bad envid");
    if (e.notify) out += "notify " + std::to_string(e.notify) + "\n";
    if (!e.ret.empty()) out += "ret " + e.ret + "\n";
    if (!e.envid.empty()) out += "envid " + e.envid + "\n";
    for (const auto& r : e.recipients) {
        if (r.empty() || !clean_value(r)) return make_error("maildrop: bad recipient address");
        out += "rcpt " + r + "\n";
    }
    out += "\n";
    if (out.size() > kMaxEnvelopeBytes) return make_error("maildrop: envelope too large");
    return out;
}

Result<Envelope> parse_envelope(std::string_view text) {
    if (text.size() < 2 || text.substr(text.size() - 2) != "\n\n")
        return make_error("maildrop: envelope does not end with a blank line");
    text.remove_suffix(1);  // keep the last field's newline
    Envelope e;
    bool seen_time = false, seen_uid = false, seen_sender = false, seen_fullname = false;
    bool first = true;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        if (nl == std::string_view::npos) return make_error("maildrop: truncated envelope line");
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        if (line.find('\0') != std::string_view::npos || line.find('\r') != std::string_view::npos)
            return make_error("maildrop: control character in envelope");
        if (first) {
            if (line != kMagic) return make_error("maildrop: not a tern maildrop file (bad magic)");
            first = false;
            continue;
        }
        size_t sp = line.find(' ');
        if (sp == std::string_view::npos) return make_error("maildrop: envelope line without a value");
        std::string_view key = line.substr(0, sp), value = line.substr(sp + 1);
        if (key == "time") {
            if (seen_time || !parse_number(value, e.time)) return make_error("maildrop: bad time");
            seen_time = true;
        } else if (key == "uid") {
            if (seen_uid || !parse_number(value, e.uid)) return make_error("maildrop: bad uid");
            seen_uid = true;
        } else if (key == "sender") {
            if (seen_sender) return make_error("maildrop: repeated sender");
            e.sender = value;
            seen_sender = true;
        } else if (key == "fullname") {
            if (seen_fullname) return make_error("maildrop: repeated fullname");
            e.fullname = value;
            seen_fullname = true;
        } else if (key == "notify") {
            unsigned bits = 0;
            if (e.notify || !parse_number(value, bits) || bits == 0 || bits > 15)
                return make_error("maildrop: bad notify");
            e.notify = static_cast<uint8_t>(bits);
        } else if (key == "ret") {
            if (!e.ret.empty() || (value != "FULL" && value != "HDRS")) return make_error("maildrop: bad ret");
            e.ret = value;
        } else if (key == "envid") {
            if (!e.envid.empty() || value.empty() || value.size() > 100) return make_error("maildrop: bad envid");
            e.envid = value;
        } else if (key == "rcpt") {
            if (value.empty()) return make_error("maildrop: empty recipient");
            if (e.recipients.size() >= kMaxRecipients) return make_error("maildrop: too many recipients");
            e.recipients.emplace_back(value);
        } else {
            return make_error("maildrop: unknown envelope field '" + std::string(key.substr(0, 40)) + "'");
        }
    }
    if (first) return make_error("maildrop: empty envelope");
    if (!seen_time || !seen_uid || !seen_sender || !seen_fullname)
        return make_error("maildrop: envelope field missing");
    if (e.recipients.empty()) return make_error("maildrop: no recipients");
    return e;
}

std::string format_trailer(uint64_t content_size, uint64_t checksum) {
    char buf[kTrailerSize + 1];
    std::snprintf(buf, sizeof buf, "\n%%end size=%020llu fnv=%016llx\n",
                  static_cast<unsigned long long>(content_size), static_cast<unsigned long long>(checksum));
    return std::string(buf, kTrailerSize);
}

Result<Trailer> parse_trailer(std::string_view t) {
    // "\n%end size=" 11 + 20 digits + " fnv=" 5 + 16 hex + "\n" 1 = 53
    if (t.size() != kTrailerSize || t.substr(0, 11) != "\n%end size=" || t.substr(31, 5) != " fnv=" ||
        t.back() != '\n')
        return make_error("maildrop: missing or damaged end marker (incomplete file)");
    Trailer tr;
    std::string_view digits = t.substr(11, 20), hex = t.substr(36, 16);
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        !parse_number(digits, tr.size))
        return make_error("maildrop: bad size in end marker");
    if (!std::all_of(hex.begin(), hex.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
        return make_error("maildrop: bad checksum in end marker");
    auto [ptr, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), tr.checksum, 16);
    if (ec != std::errc() || ptr != hex.data() + hex.size()) return make_error("maildrop: bad checksum in end marker");
    return tr;
}

Result<Parsed> parse(std::string_view file) {
    size_t end = file.find("\n\n");
    if (end == std::string_view::npos || end + 2 > kMaxEnvelopeBytes)
        return make_error("maildrop: no complete envelope");
    if (file.size() < end + 2 + kTrailerSize) return make_error("maildrop: file truncated");
    auto env = parse_envelope(file.substr(0, end + 2));
    if (!env) return env.error();
    auto tr = parse_trailer(file.substr(file.size() - kTrailerSize));
    if (!tr) return tr.error();
    std::string_view content = file.substr(end + 2, file.size() - kTrailerSize - end - 2);
    if (tr->size != content.size()) return make_error("maildrop: size mismatch (incomplete file)");
    Checksum sum;
    sum.update(file.substr(0, file.size() - kTrailerSize));
    if (sum.value() != tr->checksum) return make_error("maildrop: checksum mismatch (damaged file)");
    return Parsed{std::move(*env), content};
}

Result<std::string> serialize(const Envelope& envelope, std::string_view content) {
    auto head = format_envelope(envelope);
    if (!head) return head.error();
    std::string out = std::move(*head);
    out += content;
    Checksum sum;
    sum.update(out);
    out += format_trailer(content.size(), sum.value());
    return out;
}

// ---- Writer ----

Writer::~Writer() { abandon(); }

Writer::Writer(Writer&& o) noexcept
    : directory_(std::move(o.directory_)),
      temp_path_(std::move(o.temp_path_)),
      final_name_(std::move(o.final_name_)),
      fd_(std::move(o.fd_)),
      sum_(o.sum_),
      size_(o.size_),
      buffer_(std::move(o.buffer_)) {
    o.temp_path_.clear();
}

Writer& Writer::operator=(Writer&& o) noexcept {
    if (this != &o) {
        abandon();
        directory_ = std::move(o.directory_);
        temp_path_ = std::move(o.temp_path_);
        final_name_ = std::move(o.final_name_);
        fd_ = std::move(o.fd_);
        sum_ = o.sum_;
        size_ = o.size_;
        buffer_ = std::move(o.buffer_);
        o.temp_path_.clear();
    }
    return *this;
}

void Writer::abandon() {
    if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
    temp_path_.clear();
    fd_.reset();
}

Result<Writer> Writer::create(const std::string& directory, const Envelope& envelope) {
    auto head = format_envelope(envelope);
    if (!head) return head.error();
    Writer w;
    w.directory_ = directory;
    w.final_name_ = unique_name();
    w.temp_path_ = directory + "/tmp." + w.final_name_;
    // Mode 0644 like Postfix's maildrop files: qmgr (the queue owner, not
    // the file's owner) must read it; nobody else can even enter the
    // directory (mode 1730), so the file's own bits need not hide it.
    int fd = ::open(w.temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        auto err = errno_error("create " + w.temp_path_);
        w.temp_path_.clear();
        return err;
    }
    w.fd_.reset(fd);
    // Whatever the submitter's umask: qmgr must be able to read it.
    if (::fchmod(fd, 0644) != 0) return errno_error("chmod " + w.temp_path_);
    w.sum_.update(*head);
    if (auto st = write_all(fd, *head); !st) return st.error();
    return w;
}

Status Writer::write(std::string_view content) {
    if (!fd_) return make_error("maildrop: writer is closed");
    sum_.update(content);
    size_ += content.size();
    buffer_ += content;
    if (buffer_.size() >= 65536) {
        auto st = write_all(fd_.get(), buffer_);
        buffer_.clear();
        return st;
    }
    return {};
}

Result<std::string> Writer::commit() {
    if (!fd_) return make_error("maildrop: writer is closed");
    buffer_ += format_trailer(size_, sum_.value());
    if (auto st = write_all(fd_.get(), buffer_); !st) return st.error();
    buffer_.clear();
    if (::fsync(fd_.get()) != 0) return errno_error("fsync " + temp_path_);
    fd_.reset();
    std::string final_path = directory_ + "/" + final_name_;
    if (::rename(temp_path_.c_str(), final_path.c_str()) != 0) return errno_error("rename " + temp_path_);
    temp_path_.clear();
    // The rename is durable only once the directory is synced.
    Fd dir(::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir && ::fsync(dir.get()) != 0) return errno_error("fsync " + directory_);
    return final_name_;
}

// ---- Reader ----

Result<Reader> Reader::open(const std::string& path) {
    Reader r;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno_error("open " + path);
    r.fd_.reset(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return errno_error("stat " + path);
    if (!S_ISREG(st.st_mode)) return make_error(path + ": not a regular file");
    uint64_t file_size = static_cast<uint64_t>(st.st_size);
    // Read until the blank line that ends the envelope.
    std::string head;
    char buf[8192];
    size_t end = std::string::npos;
    while (end == std::string::npos) {
        if (head.size() > kMaxEnvelopeBytes) return make_error(path + ": maildrop envelope too large");
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("read " + path);
        }
        if (n == 0) return make_error(path + ": maildrop: no complete envelope");
        size_t search_from = head.empty() ? 0 : head.size() - 1;
        head.append(buf, static_cast<size_t>(n));
        end = head.find("\n\n", search_from);
    }
    size_t env_len = end + 2;
    auto env = parse_envelope(std::string_view(head).substr(0, env_len));
    if (!env) return make_error(path + ": " + env.message());
    if (file_size < env_len + kTrailerSize) return make_error(path + ": maildrop: file truncated");
    char tbuf[kTrailerSize];
    if (::pread(fd, tbuf, kTrailerSize, static_cast<off_t>(file_size - kTrailerSize)) !=
        static_cast<ssize_t>(kTrailerSize))
        return errno_error("read " + path);
    auto tr = parse_trailer(std::string_view(tbuf, kTrailerSize));
    if (!tr) return make_error(path + ": " + tr.message());
    r.content_size_ = file_size - kTrailerSize - env_len;
    if (tr->size != r.content_size_) return make_error(path + ": maildrop: size mismatch (incomplete file)");
    r.trailer_ = *tr;
    r.envelope_ = std::move(*env);
    r.sum_.update(std::string_view(head).substr(0, env_len));
    if (::lseek(fd, static_cast<off_t>(env_len), SEEK_SET) < 0) return errno_error("seek " + path);
    r.remaining_ = r.content_size_;
    return r;
}

Result<std::string> Reader::read(size_t max) {
    std::string out;
    if (remaining_ == 0) return out;
    out.resize(static_cast<size_t>(std::min<uint64_t>(max, remaining_)));
    for (;;) {
        ssize_t n = ::read(fd_.get(), out.data(), out.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error("read maildrop file");
        if (n == 0) return make_error("maildrop: file shrank while reading");
        out.resize(static_cast<size_t>(n));
        break;
    }
    remaining_ -= out.size();
    sum_.update(out);
    return out;
}

Status Reader::finish() {
    if (remaining_ != 0) return make_error("maildrop: content not fully read");
    if (sum_.value() != trailer_.checksum) return make_error("maildrop: checksum mismatch (damaged file)");
    return {};
}

bool is_temp_name(std::string_view name) { return name.substr(0, 4) == "tmp."; }

Result<std::vector<std::string>> list(const std::string& directory) {
    DIR* d = ::opendir(directory.c_str());
    if (!d) return errno_error("opendir " + directory);
    std::vector<std::string> names;
    while (auto* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (n.empty() || n[0] == '.' || is_temp_name(n)) continue;
        names.emplace_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace tern::maildrop

namespace tern::maildrop {

std::vector<std::string> stale_temp_files(const std::string& directory, int64_t max_age) {
    std::vector<std::string> out;
    DIR* d = ::opendir(directory.c_str());
    if (!d) return out;
    const int64_t cutoff = static_cast<int64_t>(::time(nullptr)) - max_age;
    while (auto* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (!is_temp_name(n)) continue;
        struct stat st {};
        if (::fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISREG(st.st_mode) && st.st_mtime < cutoff) out.emplace_back(n);
    }
    ::closedir(d);
    return out;
}

}  // namespace tern::maildrop
