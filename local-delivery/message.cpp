// Streaming the queued message to a mailbox: see message.hpp.
#include "local-delivery/message.hpp"

#include <unistd.h>

#include <cerrno>
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

Status copy_message(int body_fd, std::string_view prefix, const Sink& sink) {
    if (!prefix.empty())
        if (auto s = sink(prefix); !s) return s;
    std::vector<char> buf(kChunk);
    off_t offset = 0;
    for (;;) {
        ssize_t n = ::pread(body_fd, buf.data(), buf.size(), offset);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("read queued message");
        }
        if (n == 0) return {};
        offset += n;
        if (auto s = sink(std::string_view(buf.data(), static_cast<size_t>(n))); !s) return s;
    }
}

Result<bool> has_delivered_to(int body_fd, std::string_view recipient) {
    std::string want = tables::lowercase(recipient);
    std::string text;
    std::vector<char> buf(kChunk);
    off_t offset = 0;
    // Read until the end of the header section (an empty line) or the limit.
    while (text.size() < kMaxHeaderScan) {
        ssize_t n = ::pread(body_fd, buf.data(), buf.size(), offset);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("read queued message");
        }
        if (n == 0) break;
        offset += n;
        text.append(buf.data(), static_cast<size_t>(n));
        if (text.rfind("\n\n") != std::string::npos || text.rfind("\n\r\n") != std::string::npos) break;
    }
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
