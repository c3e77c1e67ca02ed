// The vmail side of a system user's session: see backend_link.hpp.
//
// Every handler call is the last thing a callback does: the owner may
// destroy this link from inside it.
#include "lib/usersession/backend_link.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sys/socket.h>

#include <cerrno>

#include "lib/core/errno_text.hpp"
#include "lib/ipc/message.hpp"

namespace tern::usersession {

BackendLink::BackendLink(event_base* base, std::string socket_path, BackendHandlers handlers)
    : base_(base), socket_path_(std::move(socket_path)), handlers_(std::move(handlers)) {
    exit_wait_ = event::timer(base_, [this](short) { finish(End::BackendDied, "backend ended without an exit report"); });
    start_wait_ = event::timer(base_, [this](short) {
        if (started_ || done_) return;
        done_ = true;
        channel_.reset();     // a late answer must not start a relay
        backend_fd_.reset();  // and a backend started anyway sees EOF
        handlers_.refused("user-session did not answer within " + std::to_string(kStartWait.count()) + "s");
    });
}

BackendLink::~BackendLink() {
    detach();
    if (backend_) bufferevent_free(backend_);
}

Status BackendLink::start(const BackendRequest& request) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return errno_error("socketpair");
    backend_fd_ = Fd(pair[0]);
    Fd theirs(pair[1]);
    auto sock = ipc::connect_unix(socket_path_);
    if (!sock) return Error{"user-session service unavailable: " + sock.message()};
    channel_ = std::make_unique<ipc::Channel>(
        base_, std::move(*sock), [this](ipc::Message& m) { on_message(m); },
        [this](const std::string& reason) { on_channel_close(reason); }, 16 * 1024);
    ipc::Message m("backend-request");
    m.add("protocol", request.protocol);
    m.add("ticket", request.ticket);
    m.add("rip", request.client_ip);
    m.add("tls", request.tls ? "1" : "0");
    m.add("tag", request.tag);
    m.attach_fd(std::move(theirs));
    channel_->send(m);  // dups the fd; ours closes when m goes
    start_wait_.add(kStartWait);
    return {};
}

void BackendLink::on_message(ipc::Message& m) {
    if (m.type() == "backend-started" && !started_) {
        started_ = true;
        start_wait_.del();
        auto pid = m.get_int("pid");
        pid_ = pid ? static_cast<pid_t>(*pid) : 0;
        handlers_.started(pid_);
        return;
    }
    if (m.type() == "backend-refused" && !started_) {
        done_ = true;
        start_wait_.del();
        handlers_.refused(m.get_or("reason", "refused"));
        return;
    }
    if (m.type() == "backend-exit" && started_) {
        exit_known_ = true;
        exit_abnormal_ = m.get_or("abnormal", "1") != "0";
        exit_status_ = m.get_or("status", "unknown");
        if (backend_eof_) finish(exit_abnormal_ ? End::BackendDied : End::BackendEnded, "backend " + exit_status_);
    }
}

void BackendLink::on_channel_close(const std::string& reason) {
    // user-session went away (restart) or broke the protocol.
    if (done_) return;
    if (!started_) {
        done_ = true;
        start_wait_.del();
        handlers_.refused("user-session closed the connection" + (reason.empty() ? "" : ": " + reason));
        return;
    }
    // The backend lives on; its exit can no longer be reported.
    if (!exit_known_ && backend_eof_) finish(End::BackendDied, "backend ended; user-session gone");
}

void BackendLink::relay(bufferevent* client) {
    client_ = client;
    backend_ = bufferevent_socket_new(base_, backend_fd_.release(), BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!backend_) {
        finish(End::BackendDied, "cannot set up the relay");
        return;
    }
    bufferevent_setcb(backend_, &on_backend_read, &on_backend_write, &on_backend_event, this);
    bufferevent_setcb(client_, &on_client_read, &on_client_write, &on_client_event, this);
    // The backend has its own autologout; ours only catches a dead peer.
    bufferevent_set_timeouts(client_, nullptr, nullptr);
    bufferevent_enable(backend_, EV_READ | EV_WRITE);
    bufferevent_enable(client_, EV_READ | EV_WRITE);
    on_client_read(client_, this);  // pipelined after the login
}

void BackendLink::detach() {
    if (client_) bufferevent_setcb(client_, nullptr, nullptr, nullptr, nullptr);
    client_ = nullptr;
    if (backend_) bufferevent_disable(backend_, EV_READ | EV_WRITE);
    exit_wait_.del();
    start_wait_.del();
}

// Copies what one side sent to the other; stops reading a side whose
// peer is not keeping up (the write callback resumes it below the mark).
static void pass(bufferevent* from, bufferevent* to) {
    evbuffer* out = bufferevent_get_output(to);
    evbuffer_add_buffer(out, bufferevent_get_input(from));
    if (evbuffer_get_length(out) >= BackendLink::kRelayHighWater) {
        bufferevent_disable(from, EV_READ);
        bufferevent_setwatermark(to, EV_WRITE, BackendLink::kRelayHighWater / 2, 0);
    }
}

static void resume(bufferevent* reader, bufferevent* writer) {
    if (evbuffer_get_length(bufferevent_get_output(writer)) < BackendLink::kRelayHighWater / 2)
        bufferevent_enable(reader, EV_READ);
}

void BackendLink::on_client_read(bufferevent*, void* arg) {
    auto* self = static_cast<BackendLink*>(arg);
    if (self->backend_ && !self->backend_eof_) pass(self->client_, self->backend_);
}

void BackendLink::on_client_write(bufferevent*, void* arg) {
    auto* self = static_cast<BackendLink*>(arg);
    if (self->backend_ && !self->backend_eof_) resume(self->backend_, self->client_);
}

void BackendLink::on_client_event(bufferevent*, short what, void* arg) {
    auto* self = static_cast<BackendLink*>(arg);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) self->finish(End::ClientLeft, "disconnected");
}

void BackendLink::on_backend_read(bufferevent*, void* arg) {
    auto* self = static_cast<BackendLink*>(arg);
    if (self->client_) pass(self->backend_, self->client_);
}

void BackendLink::on_backend_write(bufferevent*, void* arg) {
    auto* self = static_cast<BackendLink*>(arg);
    if (self->client_) resume(self->client_, self->backend_);
}

void BackendLink::on_backend_event(bufferevent*, short what, void* arg) {
    auto* self = static_cast<BackendLink*>(arg);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) self->backend_closed();
}

void BackendLink::backend_closed() {
    if (backend_eof_) return;
    backend_eof_ = true;
    if (client_) pass(backend_, client_);  // the last words (BYE, tagged OK)
    bufferevent_disable(backend_, EV_READ | EV_WRITE);
    if (client_) bufferevent_disable(client_, EV_READ);
    if (exit_known_) return finish(exit_abnormal_ ? End::BackendDied : End::BackendEnded, "backend " + exit_status_);
    if (!channel_ || channel_->closed()) return finish(End::BackendDied, "backend ended; user-session gone");
    exit_wait_.add(kExitReportWait);
}

void BackendLink::finish(End end, const std::string& why) {
    if (done_) return;
    done_ = true;
    detach();
    handlers_.ended(end, why);
}

}  // namespace tern::usersession
