// Streaming the queued message to a mailbox: see message.hpp.
#include "local-delivery/message.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "lib/core/errno_text.hpp"
#include "lib/tables/address.hpp"

namespace tern::local {
namespace {

constexpr size_t kChunk = 64 * 1024;
constexpr size_t kMaxHeaderScan = 1024 * 1024;  // a header section past this is not worth scanning

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

}  // namespace

std::string delivery_headers(std::string_view sender, std::string_view recipient, bool return_path) {
    std::string out;
    if (return_path) {
        out += "Return-Path: <";
        out += sender;
        out += ">\n";
    }
    out += "Delivered-To: ";
    out += recipient;
    out += "\n";
    return out;
}

namespace {

bool has_header_end(std::string_view text) {
    return text.find("\n\n") != std::string_view::npos || text.find("\n\r\n") != std::string_view::npos;
}

}  // namespace

Result<QueuedMessage> read_queued(int body_fd) {
    QueuedMessage m;
    m.fd = body_fd;
    size_t have = 0;
    for (;;) {
        m.head.resize(have + kChunk);
        ssize_t n = ::pread(body_fd, m.head.data() + have, kChunk, static_cast<off_t>(have));
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("read queued message");
        }
        have += static_cast<size_t>(n);
        m.head.resize(have);
        // The body is a regular file (or a memfd): a short read is its end.
        if (static_cast<size_t>(n) < kChunk) {
            m.complete = true;
            m.size = have;
            return m;
        }
        if (have >= kMaxHeaderScan || has_header_end(m.head)) break;
    }
    struct stat st {};
    if (::fstat(body_fd, &st) != 0) return errno_error("stat queued message");
    m.size = static_cast<uint64_t>(st.st_size);
    return m;
}

QueuedMessage inline_message(std::string text) {
    QueuedMessage m;
    m.size = text.size();
    m.head = std::move(text);
    m.complete = true;
    return m;
}

Result<size_t> read_at(const QueuedMessage& message, uint64_t offset, char* buf, size_t len) {
    if (offset < message.head.size()) {
        size_t n = std::min<size_t>(len, message.head.size() - offset);
        std::memcpy(buf, message.head.data() + offset, n);
        return n;
    }
    if (message.complete) return size_t{0};
    for (;;) {
        ssize_t n = ::pread(message.fd, buf, len, static_cast<off_t>(offset));
        if (n >= 0) return static_cast<size_t>(n);
        if (errno != EINTR) return errno_error("read queued message");
    }
}

Status copy_message(const QueuedMessage& message, std::string_view prefix, const Sink& sink) {
    if (message.complete) {
        if (prefix.empty()) return sink(message.head);
        std::string whole;
        whole.reserve(prefix.size() + message.head.size());
        whole.append(prefix).append(message.head);
        return sink(whole);
    }
    if (!prefix.empty())
        if (auto s = sink(prefix); !s) return s;
    if (auto s = sink(message.head); !s) return s;
    std::vector<char> buf(kChunk);
    uint64_t offset = message.head.size();
    for (;;) {
        auto n = read_at(message, offset, buf.data(), buf.size());
        if (!n) return n.error();
        if (*n == 0) return {};
        offset += *n;
        if (auto s = sink(std::string_view(buf.data(), *n)); !s) return s;
    }
}

bool has_delivered_to(const QueuedMessage& message, std::string_view recipient) {
    std::string want = tables::lowercase(recipient);
    const std::string& text = message.head;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        std::string_view line(text.data() + pos, end - pos);
        pos = end + 1;
        if (trim(line).empty() && (line.empty() || line == "\r")) break;  // end of headers
        constexpr std::string_view kName = "delivered-to:";
        if (line.size() > kName.size() && tables::lowercase(line.substr(0, kName.size())) == kName) {
            std::string_view value = trim(line.substr(kName.size()));
            if (value.size() >= 2 && value.front() == '<' && value.back() == '>')
                value = value.substr(1, value.size() - 2);
            if (tables::lowercase(value) == want) return true;
        }
    }
    return false;
}

}  // namespace tern::local
