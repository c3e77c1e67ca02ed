// One SMTP conversation (RFC 5321) on a libevent bufferevent: reading
// command lines, answering them (commands.cpp), streaming DATA/BDAT content
// into the queue (transaction.cpp), STARTTLS (RFC 3207), limits and
// timeouts.  Pipelined commands (RFC 2920) are answered in order: while a
// message is being committed, reading stops and later commands wait in the
// input buffer.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/auth/sasl.hpp"
#include "lib/core/fd.hpp"
#include "lib/auth/client.hpp"
#include "lib/event/loop.hpp"
#include "lib/event/socket_reader.hpp"
#include "lib/queue/committer.hpp"
#include "lib/queue/queue.hpp"
#include "lib/smtp/command.hpp"
#include "lib/smtp/data.hpp"
#include "smtpd/body.hpp"

namespace tern::smtpd {

class Server;

class Session : public std::enable_shared_from_this<Session> {
public:
    // fd: the accepted connection (owned from now on).
    Session(Server& server, int fd, const sockaddr* peer, bool implicit_tls);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    void start();

private:
    enum class Input { Command, Data, Bdat, Waiting, Handshake, Closing };

    // I/O (session.cpp)
    static void on_read(bufferevent*, void* arg);
    static void on_write(bufferevent*, void* arg);
    static void on_event(bufferevent*, short what, void* arg);
    void install_callbacks();
    void process();
    bool read_command();
    void send(std::string_view text);
    void write_out(std::string_view text);
    void flush_held();
    bool output_empty() const;
    void reply(int code, std::string_view enhanced, std::string_view text);
    void reply_line(const std::string& full);  // "550 5.1.1 text"
    void close_after_reply();
    void close_now(const char* why);
    void start_tls();
    void tls_established();
    void error_reply(const std::string& full);  // counts toward the error limits
    void pause_for_errors();
    void set_timeout(std::chrono::seconds seconds);
    void enable_reading();
    void disable_reading();
    bool on_plain_input(event::SocketReader::What what);

    // Commands (commands.cpp)
    void dispatch(std::string_view line);
    bool cmd_helo(const smtp::Command& cmd, bool extended);
    bool cmd_mail(const smtp::Command& cmd);
    bool cmd_rcpt(const smtp::Command& cmd);
    bool cmd_data(const smtp::Command& cmd);
    bool cmd_bdat(const smtp::Command& cmd);
    bool cmd_rset(const smtp::Command& cmd);
    bool cmd_vrfy(const smtp::Command& cmd);
    bool cmd_starttls(const smtp::Command& cmd);
    bool cmd_help();
    bool may_relay() const;
    bool need_tls_first();

    // SMTP AUTH and submission checks (auth.cpp)
    bool auth_offered() const;
    bool cmd_auth(const smtp::Command& cmd);
    void auth_continue(std::string_view line);
    bool auth_step(const auth::SaslStep& step);
    void auth_answered(const auth::Answer& answer);
    void auth_cancel();
    bool submission_mail_allowed(const std::string& sender);
    bool account_within_limits(long long messages, long long recipients);

    // Transaction (transaction.cpp)
    void reset_transaction();
    void begin_body();  // the queue id; the body file only when needed (BodyWriter)
    void consume_data();
    void consume_bdat();
    void end_of_message(smtp::DataError error);
    void log_summary();
    std::string reject_context() const;
    void abandon_body();
    void committed(const Status& status, const std::string& queue_id, uint64_t size, size_t nrcpt);
    std::string received_header() const;
    std::string protocol_name() const;

    Server& server_;
    bufferevent* bev_ = nullptr;  // owned; freed in the destructor / close
    // Replies go straight to a plain socket (no EPOLLOUT round trip) while
    // nothing is queued in bev_; -1 once TLS is on.  Replies to commands read
    // in one go (pipelining) are held and leave in one send().
    int plain_fd_ = -1;
    // Reads the plain socket in large pieces (lib/event/socket_reader.hpp);
    // the bufferevent reads only once TLS is on.
    std::unique_ptr<event::SocketReader> plain_reader_;
    std::chrono::seconds read_timeout_{300};
    bool holding_ = false;
    std::string held_;
    std::string addr_;            // "192.0.2.1"
    std::string name_;            // "unknown", "localhost"
    std::string peer_;            // "unknown[192.0.2.1]" for logs
    bool in_mynetworks_ = false;
    bool loopback_ = false;       // 127.0.0.0/8, ::1 (AUTH before TLS: smtpd_sasl_loopback_plaintext)
    bool counted_connection_ = false;
    Input input_ = Input::Command;
    bool implicit_tls_ = false;
    bool tls_ = false;
    std::string tls_description_;
    bool skipping_long_line_ = false;
    bool quitting_ = false;
    std::string last_command_ = "CONNECT";  // for "lost connection after EHLO"
    int closing_polls_ = 0;
    event::Watch close_timer_;
    event::Watch pause_timer_;
    bool paused_ = false;

    // Conversation state
    std::string helo_;
    bool esmtp_ = false;
    int errors_ = 0;
    // Disconnect summary counts ("ehlo=1 mail=1 rcpt=0/1 ..."): accepted / total.
    std::array<std::pair<int, int>, 16> counts_{};
    int commands_ = 0;
    int command_ok_ = 0;

    // SMTP AUTH state
    std::unique_ptr<auth::SaslExchange> sasl_;  // an exchange in progress
    uint64_t auth_ticket_ = 0;                  // the auth daemon's check in flight
    std::string sasl_user_;                     // the login once authenticated
    std::string sasl_method_;

    // Transaction state
    bool have_mail_ = false;
    smtp::MailFrom mail_;
    std::vector<queue::Recipient> rcpts_;
    std::string first_rcpt_;
    std::string queue_id_;
    Fd body_fd_;
    std::unique_ptr<BodyWriter> body_;
    std::unique_ptr<smtp::DataDecoder> data_;
    std::unique_ptr<smtp::ChunkDecoder> chunks_;
    std::string decoded_;        // decoder output not yet handed to body_
    uint64_t bdat_remaining_ = 0;
    bool bdat_last_ = false;
    bool bdat_failed_ = false;   // a BDAT of this transaction was refused: the rest are too
    std::string bdat_error_;
    int64_t data_started_ms_ = 0;
};

}  // namespace tern::smtpd
