// Redeeming a login ticket: see login_ticket.hpp.
#include "lib/auth/login_ticket.hpp"

#include "lib/ipc/message.hpp"

namespace tern::auth {

Result<Answer> redeem_login_ticket(const std::string& auth_socket, std::string_view ticket, std::string_view service,
                                   uid_t requester, int timeout_ms) {
    auto sock = ipc::connect_unix(auth_socket);
    if (!sock) return Error{"auth service unavailable: " + sock.message()};
    ipc::Message req("ticket-redeem");
    req.add_int("id", 1);
    req.add("ticket", ticket);
    req.add("service", service);
    req.add_int("requester", requester);
    if (Status s = ipc::send_message(sock->get(), req); !s) return Error{"auth service: " + s.message()};
    auto answer = ipc::recv_message(sock->get(), timeout_ms, 64 * 1024);
    if (!answer) return Error{"auth service: " + answer.message()};
    if (answer->type() != "ticket-answer" || answer->get_or("id", "") != "1")
        return Error{"auth service: unexpected answer \"" + answer->type() + "\""};
    if (answer->get_or("outcome", "") != "ok") return Error{"ticket refused: " + answer->get_or("reason", "no reason")};
    Answer a;
    a.outcome = Outcome::ok;
    a.user = answer->get_or("user", "");
    a.system_user = true;
    auto uid = answer->get_int("uid");
    auto gid = answer->get_int("gid");
    if (!uid || !gid || *uid < 0 || *gid < 0 || a.user.empty()) return Error{"auth service: incomplete ticket answer"};
    a.uid = static_cast<uid_t>(*uid);
    a.gid = static_cast<gid_t>(*gid);
    a.home = answer->get_or("home", "");
    a.mail = answer->get_or("mail", "");
    return a;
}

}  // namespace tern::auth
