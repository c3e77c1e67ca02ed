// The vmail side of a system user's session (docs/imap.md, "System users"):
// imapd or pop3d, after the auth daemon accepted a system user, asks the
// root-run user-session service for a backend process that runs as the
// user, then relays the client's decrypted stream to it and back.
//
//   BackendLink link(base, settings.user_session_socket, handlers);
//   link.start({"imap", answer.login_ticket, client_ip, tag, tls});
//   ...handlers.started(pid)  -> link.relay(client_bev): the link now owns
//                                 the client bufferevent's callbacks
//   ...handlers.refused(why)  -> answer the login NO / -ERR
//   ...handlers.ended(end, why) -> close the client (IMAP: a BYE first when
//                                 the backend died instead of ending the session)
//
// Wire protocol with user-session (lib/ipc frames, one request per connection):
//   request  type=backend-request protocol=imap|pop3 ticket rip tls=0|1 tag
//            + one fd: our end of a socketpair, the backend's client socket
//   answers  type=backend-started pid
//            type=backend-refused reason
//            type=backend-exit pid status ("exit 0", "signal 9") abnormal=0|1
//
// Why a relay and not the client fd itself (SCM_RIGHTS): the TLS session
// (STARTTLS or implicit) lives in this process, and a backend that gets
// the socket would have to get the keys too; one code path for TLS and
// plaintext, and the backend never needs the certificate's private key.
// The cost is one copy per byte for system users only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "lib/core/result.hpp"
#include "lib/event/loop.hpp"
#include "lib/ipc/channel.hpp"

struct bufferevent;
struct event_base;

namespace tern::usersession {

struct BackendRequest {
    std::string protocol;   // "imap" or "pop3"
    std::string ticket;     // auth::Answer::login_ticket
    std::string client_ip;  // for the backend's logs
    std::string tag;        // IMAP: the LOGIN/AUTHENTICATE tag the backend answers OK to
    bool tls = false;
};

enum class End {
    ClientLeft,    // the client closed or broke the connection
    BackendEnded,  // the backend exited normally (LOGOUT, QUIT, autologout): it said goodbye
    BackendDied,   // killed, crashed, or its end was never reported
};

struct BackendHandlers {
    std::function<void(pid_t pid)> started;
    std::function<void(const std::string& reason)> refused;
    std::function<void(End end, const std::string& why)> ended;
};

class BackendLink {
public:
    // How long to wait for user-session's exit report after the backend's
    // socket closed, before calling the end abnormal.
    static constexpr std::chrono::seconds kExitReportWait{2};
    static constexpr size_t kRelayHighWater = 256 * 1024;
    // How long user-session may take to start a backend (it waits up to 5 s
    // for the auth daemon) before the login is refused.
    static constexpr std::chrono::seconds kStartWait{15};

    BackendLink(event_base* base, std::string socket_path, BackendHandlers handlers);
    ~BackendLink();
    BackendLink(const BackendLink&) = delete;
    BackendLink& operator=(const BackendLink&) = delete;

    // Connects and sends the request; an error means nothing was started
    // (the caller answers with a temporary failure).
    Status start(const BackendRequest& request);
    // After started(): relays between client (not owned; its callbacks are
    // replaced) and the backend.  Input the client already sent is relayed.
    void relay(bufferevent* client);
    // Stops relaying and clears the client's callbacks (before it is freed).
    void detach();

private:
    static void on_client_read(bufferevent*, void* arg);
    static void on_client_write(bufferevent*, void* arg);
    static void on_client_event(bufferevent*, short what, void* arg);
    static void on_backend_read(bufferevent*, void* arg);
    static void on_backend_write(bufferevent*, void* arg);
    static void on_backend_event(bufferevent*, short what, void* arg);
    void on_message(ipc::Message& m);
    void on_channel_close(const std::string& reason);
    void backend_closed();
    void finish(End end, const std::string& why);

    event_base* base_;
    std::string socket_path_;
    BackendHandlers handlers_;
    std::unique_ptr<ipc::Channel> channel_;
    Fd backend_fd_;                    // until relay() wraps it
    bufferevent* client_ = nullptr;    // not owned
    bufferevent* backend_ = nullptr;   // owned
    event::Watch exit_wait_;
    event::Watch start_wait_;
    pid_t pid_ = 0;
    bool started_ = false;
    bool backend_eof_ = false;
    bool exit_known_ = false;
    bool exit_abnormal_ = false;
    std::string exit_status_;
    bool done_ = false;
};

}  // namespace tern::usersession
