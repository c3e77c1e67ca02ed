// A backend's command line: see backend_args.hpp.
#include "lib/usersession/backend_args.hpp"

#include "lib/net/address.hpp"

namespace tern::usersession {

std::vector<std::string> BackendArgs::to_args() const {
    std::vector<std::string> out = {"backend", "user=" + user, "mail=" + mail, "rip=" + client_ip,
                                    std::string("tls=") + (tls ? "1" : "0")};
    if (!tag.empty()) out.push_back("tag=" + tag);
    return out;
}

Result<BackendArgs> BackendArgs::parse(const std::vector<std::string>& args, bool need_tag) {
    if (args.empty() || args[0] != "backend") return Error{"backend: first argument must be 'backend'"};
    BackendArgs b;
    for (size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        size_t eq = a.find('=');
        std::string key = a.substr(0, eq), value = eq == std::string::npos ? "" : a.substr(eq + 1);
        if (eq == std::string::npos) return Error{"backend: argument without '=': '" + a + "'"};
        if (key == "user") b.user = value;
        else if (key == "mail") b.mail = value;
        else if (key == "rip") b.client_ip = value;
        else if (key == "tag") b.tag = value;
        else if (key == "tls") b.tls = value == "1";
        else return Error{"backend: unknown argument '" + a + "'"};
    }
    if (b.user.empty() || b.mail.empty() || (need_tag && b.tag.empty()))
        return Error{std::string("backend: needs user=, mail=") + (need_tag ? " and tag=" : "")};
    return b;
}

sockaddr_storage BackendArgs::peer() const {
    sockaddr_storage addr{};
    if (auto ip = net::parse_ip(client_ip)) addr = *ip;
    else addr.ss_family = AF_UNIX;
    return addr;
}

}  // namespace tern::usersession
