// IPC frames: encoding, the incremental Decoder, and blocking send/recv
// helpers.  The wire format is documented in message.hpp.  Every length
// read from the peer is checked against what is buffered and against the
// frame limit before it is used, so hostile bytes end in an Error, never
// in an overread or an unbounded allocation.
#include "lib/ipc/message.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <charconv>
#include <cstring>

#include "lib/core/errno_text.hpp"
#include "lib/ipc/socket_io.hpp"

namespace tern::ipc {

namespace {

constexpr char kMagic[4] = {'T', 'R', 'N', '1'};
constexpr size_t kHeaderSize = 4 + 4 + 2;

void put_u16(std::string& out, uint16_t v) {
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v & 0xff));
}

void put_u32(std::string& out, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

uint16_t get_u16(const char* p) {
    auto u = reinterpret_cast<const unsigned char*>(p);
    return static_cast<uint16_t>((u[0] << 8) | u[1]);
}

uint32_t get_u32(const char* p) {
    auto u = reinterpret_cast<const unsigned char*>(p);
    return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

void put_attribute(std::string& out, std::string_view name, std::string_view value) {
    put_u16(out, static_cast<uint16_t>(name.size()));
    out.append(name);
    put_u32(out, static_cast<uint32_t>(value.size()));
    out.append(value);
}

// Parses a frame body into message (type + attributes).
Status parse_body(std::string_view body, Message& message) {
    size_t pos = 0;
    bool first = true;
    while (pos < body.size()) {
        if (body.size() - pos < 2) return make_error("truncated attribute name length");
        size_t name_len = get_u16(body.data() + pos);
        pos += 2;
        if (name_len == 0) return make_error("empty attribute name");
        if (body.size() - pos < name_len) return make_error("truncated attribute name");
        std::string_view name = body.substr(pos, name_len);
        pos += name_len;
        if (body.size() - pos < 4) return make_error("truncated attribute value length");
        size_t value_len = get_u32(body.data() + pos);
        pos += 4;
        if (body.size() - pos < value_len) return make_error("truncated attribute value");
        std::string_view value = body.substr(pos, value_len);
        pos += value_len;
        if (first) {
            if (name != "type") return make_error("first attribute is not \"type\"");
            if (value.empty()) return make_error("empty message type");
            message = Message(value);
            first = false;
        } else {
            if (name == "type") return make_error("repeated \"type\" attribute");
            message.add(name, value);
        }
    }
    if (first) return make_error("frame without a \"type\" attribute");
    return {};
}

int64_t monotonic_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// Waits until sock is ready for events; timeout_ms < 0 waits forever.
Status wait_ready(int sock, short events, int64_t deadline_ms) {
    for (;;) {
        int wait = -1;
        if (deadline_ms >= 0) {
            int64_t left = deadline_ms - monotonic_ms();
            if (left <= 0) return make_error("timed out");
            wait = static_cast<int>(left);
        }
        pollfd p{sock, events, 0};
        int r = ::poll(&p, 1, wait);
        if (r > 0) return {};
        if (r < 0 && errno != EINTR) return errno_error("poll");
    }
}

}  // namespace

Message::Message(std::string_view type) : type_(type) {}

Message& Message::add(std::string_view name, std::string_view value) {
    // "type" is the frame's first attribute; a second one would be rejected.
    if (name == "type") {
        type_ = std::string(value);
    } else {
        attrs_.emplace_back(std::string(name), std::string(value));
    }
    return *this;
}

Message& Message::add_int(std::string_view name, int64_t value) {
    return add(name, std::to_string(value));
}

std::optional<std::string_view> Message::get(std::string_view name) const {
    if (name == "type") return std::string_view(type_);
    for (const auto& [n, v] : attrs_)
        if (n == name) return std::string_view(v);
    return std::nullopt;
}

std::string Message::get_or(std::string_view name, std::string_view fallback) const {
    auto v = get(name);
    return std::string(v ? *v : fallback);
}

Result<int64_t> Message::get_int(std::string_view name) const {
    auto v = get(name);
    if (!v) return make_error("missing attribute \"" + std::string(name) + "\"");
    int64_t out = 0;
    auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (v->empty() || ec != std::errc() || ptr != v->data() + v->size())
        return make_error("attribute \"" + std::string(name) + "\" is not an integer");
    return out;
}

std::vector<std::string_view> Message::get_all(std::string_view name) const {
    std::vector<std::string_view> out;
    for (const auto& [n, v] : attrs_)
        if (n == name) out.emplace_back(v);
    return out;
}

Fd Message::take_fd(size_t index) {
    if (index >= fds_.size()) return Fd();
    return std::move(fds_[index]);
}

std::string encode(const Message& message) {
    std::string out;
    out.append(kMagic, 4);
    put_u32(out, 0);  // body length, patched below
    put_u16(out, 0);  // fd count, patched below
    put_attribute(out, "type", message.type());
    for (const auto& [n, v] : message.attributes()) put_attribute(out, n, v);
    uint32_t body = static_cast<uint32_t>(out.size() - kHeaderSize);
    std::string len;
    put_u32(len, body);
    out.replace(4, 4, len);
    size_t nfds = 0;
    for (const auto& fd : const_cast<Message&>(message).fds())
        if (fd.valid()) ++nfds;
    std::string count;
    put_u16(count, static_cast<uint16_t>(nfds));
    out.replace(8, 2, count);
    return out;
}

void Decoder::feed(std::string_view bytes) {
    if (!failed_) buffer_.append(bytes);
}

void Decoder::feed_fd(Fd fd) {
    // Fds after a failure are closed right away (Fd's destructor).
    if (!failed_) pending_fds_.push_back(std::move(fd));
}

Result<std::optional<Message>> Decoder::next() {
    auto fail = [this](std::string why) -> Result<std::optional<Message>> {
        failed_ = true;
        failure_ = std::move(why);
        buffer_.clear();
        buffer_.shrink_to_fit();
        pending_fds_.clear();
        return make_error(failure_);
    };
    if (failed_) return make_error(failure_);
    if (pending_fds_.size() > 2 * size_t{kMaxFds}) return fail("too many file descriptors received");
    if (buffer_.empty()) {
        if (!pending_fds_.empty()) return fail("file descriptors received without a frame");
        return std::optional<Message>();
    }
    // Reject garbage as soon as the magic cannot match, not after 4 GB.
    size_t have = std::min(buffer_.size(), size_t{4});
    if (std::memcmp(buffer_.data(), kMagic, have) != 0) return fail("bad frame magic");
    if (buffer_.size() < kHeaderSize) return std::optional<Message>();
    uint32_t body_len = get_u32(buffer_.data() + 4);
    uint16_t fd_count = get_u16(buffer_.data() + 8);
    if (body_len > max_frame_)
        return fail("frame of " + std::to_string(body_len) + " bytes exceeds limit of " +
                    std::to_string(max_frame_));
    if (fd_count > kMaxFds) return fail("frame announces " + std::to_string(fd_count) + " file descriptors");
    if (buffer_.size() - kHeaderSize < body_len) return std::optional<Message>();

    // Fds travel with the frame's first byte, so all of them are here now.
    if (pending_fds_.size() < fd_count)
        return fail("frame announces " + std::to_string(fd_count) + " file descriptors, received " +
                    std::to_string(pending_fds_.size()));
    size_t frame_end = kHeaderSize + body_len;
    if (buffer_.size() == frame_end && pending_fds_.size() > fd_count)
        return fail("frame announces " + std::to_string(fd_count) + " file descriptors, received " +
                    std::to_string(pending_fds_.size()));

    Message message;
    Status parsed = parse_body(std::string_view(buffer_).substr(kHeaderSize, body_len), message);
    if (!parsed) return fail(parsed.message());
    for (size_t i = 0; i < fd_count; ++i) message.attach_fd(std::move(pending_fds_[i]));
    pending_fds_.erase(pending_fds_.begin(), pending_fds_.begin() + fd_count);
    buffer_.erase(0, frame_end);
    return std::optional<Message>(std::move(message));
}

Status send_message(int sock, const Message& message) {
    std::string bytes = encode(message);
    std::vector<int> fds;
    for (const auto& fd : const_cast<Message&>(message).fds())
        if (fd.valid()) fds.push_back(fd.get());
    if (fds.size() > kMaxFds) return make_error("too many file descriptors for one message");
    size_t sent = 0;
    while (sent < bytes.size()) {
        // The fds go with the first byte only.
        ssize_t n = detail::send_with_fds(sock, bytes.data() + sent, bytes.size() - sent,
                                          sent == 0 ? fds.data() : nullptr, sent == 0 ? fds.size() : 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                Status ready = wait_ready(sock, POLLOUT, -1);
                if (!ready) return ready;
                continue;
            }
            return errno_error("send " + message.type());
        }
        sent += static_cast<size_t>(n);
    }
    return {};
}

Result<Message> recv_message(int sock, int timeout_ms, uint32_t max_frame) {
    int64_t deadline = timeout_ms < 0 ? -1 : monotonic_ms() + timeout_ms;
    Decoder decoder(max_frame);
    // Read the header, then exactly the body: a blocking client must not
    // swallow bytes of the frame after this one.
    std::string header;
    size_t want = kHeaderSize;
    size_t got = 0;
    std::string buf;
    for (;;) {
        buf.resize(std::min(want - got, size_t{65536}));
        std::vector<Fd> fds;
        bool truncated = false;
        // MSG_DONTWAIT: the timeout must hold on a blocking socket too.
        ssize_t n = detail::recv_with_fds(sock, buf.data(), buf.size(), fds, &truncated, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                Status ready = wait_ready(sock, POLLIN, deadline);
                if (!ready) return make_error("receive: " + ready.message());
                continue;
            }
            return errno_error("receive");
        }
        if (truncated) return make_error("receive: too many file descriptors");
        if (n == 0) return make_error(got == 0 ? "connection closed" : "connection closed mid-frame");
        std::string_view chunk(buf.data(), static_cast<size_t>(n));
        if (header.size() < kHeaderSize) header.append(chunk.substr(0, kHeaderSize - header.size()));
        decoder.feed(chunk);
        for (auto& fd : fds) decoder.feed_fd(std::move(fd));
        got += static_cast<size_t>(n);
        auto r = decoder.next();  // validates magic, size and fd count early
        if (!r) return r.error();
        if (r->has_value()) return std::move(**r);
        if (got == kHeaderSize && want == kHeaderSize) want += get_u32(header.data() + 4);
        if (got >= want) return make_error("receive: incomplete frame");  // defensive; decoder disagrees
        if (deadline >= 0 && monotonic_ms() >= deadline) return make_error("receive: timed out");
    }
}

Result<Fd> connect_unix(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        return make_error("connect " + path + ": socket path too long");
    std::memcpy(addr.sun_path, path.data(), path.size());
    Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) return errno_error("socket");
    int r;
    do {
        r = ::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return errno_error("connect " + path);
    return sock;
}

Result<PeerCred> peer_credentials(int sock) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return errno_error("SO_PEERCRED");
    return PeerCred{cred.pid, cred.uid, cred.gid};
}

}  // namespace tern::ipc
