// IPC messages between tern's processes over UNIX stream sockets.
//
// Wire format of one frame (all integers big-endian):
//
//   u32 magic "TRN1" | u32 body length | u16 fd count | body
//   body = repeated attribute: u16 name length | name | u32 value length | value
//
// The first attribute is always "type".  Attributes may repeat (one "rcpt"
// per recipient).  File descriptors (a message body, a client socket) travel
// with SCM_RIGHTS on the frame's header bytes; the fd count says how many
// belong to this frame.  A frame over the size limit, a bad magic, a
// truncated attribute or a missing/unexpected fd is a protocol error: the
// peer gets no further service and the connection is closed — never a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/core/result.hpp"

namespace tern::ipc {

inline constexpr uint32_t kDefaultMaxFrame = 4 * 1024 * 1024;
inline constexpr uint16_t kMaxFds = 16;

class Message {
public:
    Message() = default;
    explicit Message(std::string_view type);

    const std::string& type() const { return type_; }

    Message& add(std::string_view name, std::string_view value);
    Message& add_int(std::string_view name, int64_t value);

    // First value of an attribute, or nullopt.
    std::optional<std::string_view> get(std::string_view name) const;
    std::string get_or(std::string_view name, std::string_view fallback) const;
    Result<int64_t> get_int(std::string_view name) const;
    std::vector<std::string_view> get_all(std::string_view name) const;
    const std::vector<std::pair<std::string, std::string>>& attributes() const { return attrs_; }

    void attach_fd(Fd fd) { fds_.push_back(std::move(fd)); }
    std::vector<Fd>& fds() { return fds_; }
    Fd take_fd(size_t index);  // invalid Fd when absent

private:
    std::string type_;
    std::vector<std::pair<std::string, std::string>> attrs_;  // excluding "type"
    std::vector<Fd> fds_;
};

// Encoding without fds (they go beside the bytes, see send_message()).
std::string encode(const Message& message);

// Incremental decoder: feed bytes and received fds; take complete messages.
class Decoder {
public:
    explicit Decoder(uint32_t max_frame = kDefaultMaxFrame) : max_frame_(max_frame) {}
    void feed(std::string_view bytes);
    void feed_fd(Fd fd);
    // A complete message, nullopt when more bytes are needed, or an error
    // (after which the decoder stays failed).
    Result<std::optional<Message>> next();
    // True when no partial frame is buffered (EOF here is a clean close).
    bool idle() const { return buffer_.empty(); }

private:
    std::string buffer_;
    std::vector<Fd> pending_fds_;
    uint32_t max_frame_;
    bool failed_ = false;
    std::string failure_;
};

// Blocking helpers for simple clients (mailctl, sendmail, tests).
Status send_message(int sock, const Message& message);  // sends message's fds too (dup'd, not consumed)
Result<Message> recv_message(int sock, int timeout_ms, uint32_t max_frame = kDefaultMaxFrame);
// Connects to a UNIX stream socket.
Result<Fd> connect_unix(const std::string& path);

// Peer credentials of a connected UNIX socket (SO_PEERCRED).
struct PeerCred {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};
Result<PeerCred> peer_credentials(int sock);

}  // namespace tern::ipc
