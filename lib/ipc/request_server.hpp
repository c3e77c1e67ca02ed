// The skeleton of a UNIX-socket request service (auth, user-session):
// accept on the sockets master passed, admit only peers whose uid
// (SO_PEERCRED) is allowed, and run one Channel per admitted connection
// under a number, so that an answer computed later still finds its
// connection, or learns that it is gone.  A dropped connection is destroyed
// from the loop a moment later, never inside its own callback.
//
// PeerAcceptor is the accepting half; RequestServer<State> adds the
// connections, each with the service's own State beside the peer's ids.
//
// Log lines (warnings; SOCKET and KEY come from the PeerPolicy):
//   accept: <errno text>
//   SOCKET: <why the peer's credentials are unknown>
//   refused connection from uid 1001 pid 4242: not in KEY
//   connection from pid 4242: <channel error>
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "lib/core/fd.hpp"
#include "lib/event/loop.hpp"
#include "lib/ipc/channel.hpp"
#include "lib/log/log.hpp"

namespace tern::ipc {

struct PeerPolicy {
    std::string socket_name;       // "auth socket": prefix of credential errors
    std::string allowed_key;       // "auth_peer_users": named when a peer is refused
    std::set<uid_t> allowed_uids;  // everyone else is refused
};

class PeerAcceptor {
public:
    using OnPeer = std::function<void(Fd sock, const PeerCred& peer)>;
    PeerAcceptor(event_base* base, std::vector<Fd> listeners, PeerPolicy policy, OnPeer on_peer);
    PeerAcceptor(const PeerAcceptor&) = delete;
    PeerAcceptor& operator=(const PeerAcceptor&) = delete;
    void close();  // stop accepting; connections already made go on

private:
    void accept_from(int listener);

    std::vector<Fd> listeners_;
    std::vector<event::Watch> watches_;
    PeerPolicy policy_;
    OnPeer on_peer_;
};

template <class State = std::monostate>
class RequestServer {
public:
    struct Connection {
        std::unique_ptr<Channel> channel;
        uid_t uid = 0;
        pid_t pid = 0;
        State state{};
    };
    using OnMessage = std::function<void(uint64_t conn, Message& m)>;
    using OnDrop = std::function<void(uint64_t conn)>;  // the connection is closing

    RequestServer(event_base* base, std::vector<Fd> listeners, PeerPolicy policy, uint32_t max_request,
                  OnMessage on_message, OnDrop on_drop = {})
        : base_(base),
          max_request_(max_request),
          on_message_(std::move(on_message)),
          on_drop_(std::move(on_drop)),
          sweeper_(event::timer(base, [this](short) { sweep(); })),
          acceptor_(base, std::move(listeners), std::move(policy),
                    [this](Fd sock, const PeerCred& peer) { open(std::move(sock), peer); }) {}
    RequestServer(const RequestServer&) = delete;
    RequestServer& operator=(const RequestServer&) = delete;

    void close_listeners() { acceptor_.close(); }
    // Closes the connection soon: it stays in the table until the loop
    // comes back, so a caller inside its callback may still use it.
    void drop(uint64_t conn) {
        if (on_drop_) on_drop_(conn);
        closed_.push_back(conn);
        sweeper_.activate();
    }
    // Like std::map::operator[]: the callers' ids come from this table.
    Connection& operator[](uint64_t conn) { return conns_[conn]; }
    Connection* find(uint64_t conn) {
        auto it = conns_.find(conn);
        return it == conns_.end() ? nullptr : &it->second;
    }
    size_t size() const { return conns_.size(); }

private:
    void open(Fd sock, const PeerCred& peer) {
        uint64_t id = next_conn_++;
        Connection& c = conns_[id];
        c.uid = peer.uid;
        c.pid = peer.pid;
        c.channel = std::make_unique<Channel>(
            base_, std::move(sock), [this, id](Message& m) { on_message_(id, m); },
            [this, id](const std::string& reason) {
                if (!reason.empty()) log::warning("connection from pid %d: %s", int(conns_[id].pid), reason.c_str());
                drop(id);
            },
            max_request_);
    }
    void sweep() {
        for (uint64_t id : closed_) conns_.erase(id);
        closed_.clear();
    }

    event_base* base_;
    uint32_t max_request_;
    OnMessage on_message_;
    OnDrop on_drop_;
    std::map<uint64_t, Connection> conns_;
    std::vector<uint64_t> closed_;
    event::Watch sweeper_;
    uint64_t next_conn_ = 1;
    PeerAcceptor acceptor_;  // last: its callback uses everything above
};

}  // namespace tern::ipc
