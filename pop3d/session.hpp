// One POP3 conversation (RFC 1939) on a libevent bufferevent: command line
// framing, the AUTHORIZATION / TRANSACTION / UPDATE states, STLS (RFC
// 2595), AUTH (RFC 5034) through the auth daemon, RETR/TOP streamed from
// the stored message, limits and timeouts.  Pipelined commands (RFC 2449
// PIPELINING) are answered in order: while a login is being checked or a
// message is being sent, reading stops and later commands wait in the
// input buffer.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "lib/auth/client.hpp"
#include "lib/auth/sasl.hpp"
#include "lib/core/fd.hpp"
#include "lib/event/loop.hpp"
#include "lib/mailstore/mailstore.hpp"
#include "lib/pop3/command.hpp"
#include "lib/pop3/maildrop.hpp"
#include "lib/pop3/response.hpp"
#include "lib/usersession/backend_link.hpp"

namespace tern::pop3d {

class Server;

class Session {
public:
    // fd: the accepted connection (owned from now on).
    Session(Server& server, int fd, const sockaddr* peer);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    void start();
    // Backend mode (system_user.cpp): the login already happened in the
    // vmail pop3d (which holds the maildrop lock); serve user's Maildir.
    void start_backend(const std::string& user, const std::string& mail, bool tls);

private:
    enum class State { Authorization, Transaction };
    enum class Input { Command, SaslLine, Waiting, Sending, Handshake, Closing };

    // I/O (session.cpp)
    static void on_read(bufferevent*, void* arg);
    static void on_write(bufferevent*, void* arg);
    static void on_event(bufferevent*, short what, void* arg);
    void install_callbacks();
    void process();
    bool read_line();
    void send(std::string_view text);
    void error(std::string_view code, std::string_view text);  // -ERR, counted toward the error limit
    void close_after_reply();
    void close_now(const char* why);
    void resume();
    void start_tls();
    void tls_established();
    void pump_message();
    void log_disconnect(const char* why);

    // Commands (commands.cpp)
    void dispatch(std::string_view line);
    void cmd_capa();
    void cmd_stls();
    void cmd_user(const pop3::Command& cmd);
    void cmd_pass(const pop3::Command& cmd);
    void cmd_auth(const pop3::Command& cmd);
    void cmd_quit();
    void transaction(const pop3::Command& cmd);
    void cmd_list(const pop3::Command& cmd, bool uidl);
    void cmd_retr(const pop3::Command& cmd, bool top);
    std::optional<uint32_t> message_argument(std::string_view arg);

    // Login (login.cpp)
    bool may_login();
    void sasl_line(std::string_view line);
    void sasl_step(const auth::SaslStep& step);
    void check_credentials(std::string mechanism, auth::Credentials credentials);
    void logged_in(const auth::Answer& answer);
    bool lock_mailbox(const std::string& user);
    bool open_maildrop(const std::string& user, const std::string& mail, uint64_t quota);  // -ERR sent when false
    void serve_system_user(const auth::Answer& answer);                   // system_user.cpp

    Server& server_;
    bufferevent* bev_ = nullptr;  // owned
    std::string addr_;            // "192.0.2.1"
    std::string peer_;            // "unknown[192.0.2.1]" for logs
    bool secure_network_ = false; // plaintext logins allowed without TLS
    bool tls_ = false;
    State state_ = State::Authorization;
    Input input_ = Input::Command;
    bool skipping_long_line_ = false;
    bool quit_ = false;
    int errors_ = 0;
    int auth_failures_ = 0;
    event::Watch close_timer_;
    int closing_polls_ = 0;

    // AUTHORIZATION
    std::string user_arg_;  // from USER, waiting for PASS
    std::optional<auth::SaslExchange> sasl_;
    auth::Client::Ticket ticket_ = 0;

    // TRANSACTION
    std::string user_;
    Fd lock_;
    std::unique_ptr<usersession::BackendLink> backend_;  // a system user's relay
    std::unique_ptr<mailstore::Store> store_;  // outlives the maildrop's Mailbox
    std::optional<pop3::Maildrop> maildrop_;
    // The message being sent by RETR/TOP.
    std::unique_ptr<mailstore::MessageBody> body_;
    std::optional<pop3::MultilineEncoder> encoder_;
    size_t body_offset_ = 0;
    // Disconnect summary (Dovecot's "retr=N/bytes, del=N/M" figures).
    uint32_t retr_count_ = 0;
    uint64_t retr_bytes_ = 0;
    uint32_t top_count_ = 0;
};

}  // namespace tern::pop3d
