// One IMAP connection (RFC 9051 / RFC 3501) on a libevent bufferevent.
//
// States (RFC 9051 3): not authenticated -> authenticated -> selected ->
// logout.  Commands arrive through imap::CommandReader, which admits or
// refuses every literal before the client sends it; each command is
// executed to its end before the next one is read, except the auth check,
// which waits for the auth daemon's answer with reading paused.  Untagged
// updates about the selected mailbox (changes by other sessions, processes
// and deliveries) are sent before a command's tagged answer, and at once
// while IDLE (the store's notify fd is watched on the event loop).
//
// Files: session.cpp (I/O, STARTTLS, timeouts, output), commands.cpp
// (dispatch, any-state and login commands), system_user.cpp (a system
// user's session in a backend process under the user's uid), folders.cpp (LIST, STATUS,
// SELECT, CREATE, ... APPEND), messages.cpp (FETCH, STORE, COPY, MOVE,
// EXPUNGE, IDLE), search.cpp (SEARCH, SORT, THREAD).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/auth/client.hpp"
#include "lib/auth/sasl.hpp"
#include "lib/event/loop.hpp"
#include "lib/imap/parser.hpp"
#include "lib/imap/reader.hpp"
#include "lib/imap/search.hpp"
#include "lib/imap/sequence.hpp"
#include "lib/mailstore/mailstore.hpp"
#include "lib/usersession/backend_link.hpp"

namespace tern::imapd {

class Server;
struct Compression;

enum class State { NotAuthenticated, Authenticated, Selected, Logout };

// Flag names from the wire to the store's form (system flags as bits,
// keywords by name); false with a reason for an unknown system flag.
bool to_store_flags(const std::vector<std::string>& list, mailstore::Flags& flags, std::string& error);

class Session {
public:
    Session(Server& server, int fd, const sockaddr* peer, bool implicit_tls);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    void start();
    // Backend mode (system_user.cpp): the login already happened in the
    // vmail imapd; answer its tag OK and serve user's Maildir at mail.
    void start_backend(const std::string& user, const std::string& mail, const std::string& tag, bool tls);

private:
    enum class Input { Commands, Sasl, Idle, Waiting, Handshake, Closing };

    // ---- I/O (session.cpp) ----
    static void on_read(bufferevent*, void* arg);
    static void on_write(bufferevent*, void* arg);
    static void on_event(bufferevent*, short what, void* arg);
    void install_callbacks();
    void process();
    void send(std::string_view text);
    // While set, send() appends here instead (an answer that leaves by
    // tls::send_now()).
    std::string* capture_ = nullptr;
    void untagged(std::string_view text);  // "* " text CRLF
    void tagged(std::string_view status, std::string_view code, std::string_view text);
    void bye_and_close(std::string_view text);
    void close_after_output();
    void close_now(const char* why);
    void start_tls();
    void tls_established();
    void update_timeout();
    void resume();  // after an asynchronous step: read on

    // ---- commands (commands.cpp) ----
    void execute(std::string_view command);
    void greeting();
    std::string capabilities() const;
    bool may_authenticate() const;  // TLS or loopback
    void cmd_capability(imap::Parser& p);
    void cmd_noop(imap::Parser& p);
    void cmd_logout(imap::Parser& p);
    void cmd_starttls(imap::Parser& p);
    void cmd_login(imap::Parser& p);
    void cmd_authenticate(imap::Parser& p);
    void sasl_line(std::string_view line);
    void sasl_step(const auth::SaslStep& step);
    void check_credentials(std::string mechanism, auth::Credentials credentials);
    void logged_in(const auth::Answer& answer);
    bool open_store(const std::string& user, const std::string& mail, uint64_t quota);  // NO sent when false
    void serve_system_user(const auth::Answer& answer);               // system_user.cpp
    void cmd_id(imap::Parser& p);
    void cmd_enable(imap::Parser& p);
    void bad_syntax(const imap::Parser& p);

    // ---- folders (folders.cpp) ----
    void cmd_namespace(imap::Parser& p);
    void cmd_list(imap::Parser& p, bool lsub);
    void cmd_status(imap::Parser& p);
    void cmd_select(imap::Parser& p, bool read_only);
    struct SelectRequest {  // SELECT/EXAMINE's arguments
        std::string name;
        bool read_only = false, condstore = false;
        std::optional<uint32_t> q_uidvalidity;  // QRESYNC (RFC 7162 3.2.5)
        uint64_t q_modseq = 0;
        std::optional<imap::SequenceSet> q_known;
    };
    // The untagged lines of SELECT's answer (FLAGS ... HIGHESTMODSEQ, LIST).
    void select_answer(const SelectRequest& r, const mailstore::OpenAnswer& a, bool read_only);
    // The mailbox opened: the session is in it; the rest of the answer
    // (QRESYNC's lines, the tagged OK) unless `answered` early.
    void selected(std::unique_ptr<mailstore::Mailbox> box, const SelectRequest& r, bool answered);
    void cmd_create(imap::Parser& p);
    void cmd_delete(imap::Parser& p);
    void cmd_rename(imap::Parser& p);
    void cmd_subscribe(imap::Parser& p, bool on);
    void cmd_append(imap::Parser& p);
    void cmd_close(imap::Parser& p, bool expunge);
    // A mailbox name from the wire (modified UTF-7 or UTF-8) to the store's
    // UTF-8 form, and back; nullopt + BAD already sent when invalid.
    std::optional<std::string> mailbox_arg(imap::Parser& p);
    std::string wire_name(std::string_view name) const;
    std::string status_items(const std::string& name, const mailstore::MailboxStatus& st,
                             const std::vector<std::string>& items);
    void unselect();

    // ---- COMPRESS=DEFLATE (compress.cpp) ----
    void cmd_compress(imap::Parser& p);

    // ---- quota (quota.cpp) ----
    void cmd_getquota(imap::Parser& p);
    void cmd_getquotaroot(imap::Parser& p);
    void cmd_setquota(imap::Parser& p);
    bool quota_response();  // "* QUOTA" of the user's root; false (and NO sent) on error
    uint64_t deleted_storage(const std::string& name);  // STATUS DELETED-STORAGE, KiB

    // ---- messages (messages.cpp) ----
    void cmd_fetch(imap::Parser& p, bool uid);
    void cmd_store(imap::Parser& p, bool uid);
    void cmd_copy(imap::Parser& p, bool uid, bool move);
    void cmd_expunge(imap::Parser& p, bool uid);
    void cmd_idle(imap::Parser& p);
    void idle_line(std::string_view line);
    void report_changes(const mailstore::Changes& c);
    void refresh_and_report();
    // The flags of message uid: stored ones, and \Recent for IMAP4rev1.
    std::string flags_text(uint32_t uid, uint8_t system, uint64_t keywords) const;
    void append_flags(std::string& out, uint32_t uid, uint8_t system, uint64_t keywords) const;
    // The UIDs a sequence set names in the view (ascending), "$" resolved.
    // nullopt (and BAD sent) for a sequence number beyond the mailbox.
    std::optional<std::vector<uint32_t>> uids_of(const imap::SequenceSet& set, bool uid);
    void watch_mailbox();

    // ---- search (search.cpp) ----
    void cmd_search(imap::Parser& p, bool uid);
    void cmd_sort(imap::Parser& p, bool uid);
    void cmd_thread(imap::Parser& p, bool uid);
    std::optional<std::vector<uint32_t>> evaluate(const imap::SearchKey& key);
    bool check_charset(const std::string& charset);

    Server& server_;
    bufferevent* bev_ = nullptr;
    std::string addr_;
    std::string peer_;  // "unknown[192.0.2.1]" for logs
    bool loopback_ = false;
    bool implicit_tls_ = false;
    bool tls_ = false;
    Compression* compression_ = nullptr;  // COMPRESS DEFLATE active (RFC 4978): the filter's state
    bool greeted_ = false;
    Input input_ = Input::Commands;
    State state_ = State::NotAuthenticated;
    imap::CommandReader reader_;
    std::string tag_;  // of the command being executed
    event::Watch close_timer_;
    int closing_polls_ = 0;

    // Login
    std::unique_ptr<auth::SaslExchange> sasl_;
    auth::Client::Ticket ticket_ = 0;
    int auth_failures_ = 0;
    std::string user_;
    std::unique_ptr<usersession::BackendLink> backend_;  // a system user's relay

    // ENABLE (RFC 5161) and the protocol revision in use
    bool rev2_ = false;
    bool utf8_ = false;
    bool condstore_ = false;
    bool qresync_ = false;

    // Authenticated / selected
    std::unique_ptr<mailstore::Store> store_;
    uint64_t quota_ = 0;  // bytes, from the auth answer; 0 = none
    std::unique_ptr<mailstore::Mailbox> mailbox_;
    event::Watch notify_;
    // SELECT's read of the view's pages (Mailbox::expect_view()), started
    // once its answer has been written, not before.
    event::Watch view_prefetch_;
    std::vector<uint32_t> saved_;  // SEARCHRES "$", as UIDs
    bool idle_done_pending_ = false;
};

}  // namespace tern::imapd
