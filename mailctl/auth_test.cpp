// `mailctl auth test USER`: checks a password like `doveadm auth test`.
// Asks the running auth daemon (the same path as smtpd and imapd: service
// "mailctl", counted by the failure throttling); when no daemon answers on
// auth_socket, checks the users file directly and says so ("offline"), which
// needs read access to it and covers virtual users only.
#include <unistd.h>

#include <iostream>

#include "lib/auth/client.hpp"
#include "lib/auth/password.hpp"
#include "lib/event/loop.hpp"
#include "lib/ipc/message.hpp"
#include "lib/maildir/maildir.hpp"
#include "lib/sys/files.hpp"
#include "lib/tables/passwords.hpp"
#include "lib/tables/users.hpp"
#include "mailctl/commands.hpp"
#include "mailctl/users_file.hpp"

namespace tern::mailctl {
namespace {

int print_answer(const auth::Answer& a, const std::string& via) {
    if (a.outcome == auth::Outcome::ok) {
        std::cout << "passdb: " << a.user << " auth succeeded (" << via << ")\n";
        std::cout << "extra fields:\n  user=" << a.user << "\n";
        if (a.system_user) std::cout << "  system=yes\n";
        if (a.uid) std::cout << "  uid=" << *a.uid << "\n";
        if (a.gid) std::cout << "  gid=" << *a.gid << "\n";
        if (!a.home.empty()) std::cout << "  home=" << a.home << "\n";
        std::cout << "  mail=" << a.mail << "\n";
        return kExitOk;
    }
    std::cout << "passdb: auth " << (a.outcome == auth::Outcome::fail ? "failed" : "temporarily failed") << " ("
              << via << "): " << a.reason << "\n";
    return kExitFailure;
}

auth::Answer offline_check(const config::Config& config, const std::string& login, const std::string& password) {
    auth::Answer a;
    a.outcome = auth::Outcome::fail;
    if (login.find('@') == std::string::npos) {
        a.outcome = auth::Outcome::tempfail;
        a.reason = "system users can only be checked by the running auth daemon";
        return a;
    }
    auto text = sys::read_file(config.get("virtual_mailbox_maps"));
    if (!text) {
        a.outcome = auth::Outcome::tempfail;
        a.reason = text.message();
        return a;
    }
    Result<std::string> passwd = std::string();
    if (::access(config.get("auth_password_file").c_str(), F_OK) == 0)
        passwd = sys::read_file(config.get("auth_password_file"));
    if (!passwd) {
        a.outcome = auth::Outcome::tempfail;
        a.reason = passwd.message();
        return a;
    }
    auto parsed = tables::merge_passwords(*text, config.get("virtual_mailbox_maps"), *passwd,
                                          config.get("auth_password_file"));
    std::string want = login;
    for (auto& c : want) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const auto& u : parsed.users) {
        if (u.address != want) continue;
        auto v = auth::verify_password(u.password, password, config.get_bool("auth_allow_plain"));
        if (v.verdict != auth::Verify::match) {
            a.reason = v.verdict == auth::Verify::mismatch ? "password mismatch" : "unusable password entry: " + v.why;
            return a;
        }
        a.outcome = auth::Outcome::ok;
        a.user = u.address;
        a.uid = u.uid;
        a.gid = u.gid;
        a.home = u.home;
        auto mail = maildir::virtual_maildir(config.get("mail_directory"), u.address, u.home);
        a.mail = mail ? *mail : mail.message();
        return a;
    }
    a.reason = "unknown user";
    return a;
}

}  // namespace

int cmd_auth(Context& ctx, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << find_command("auth")->usage;
        return kExitOk;
    }
    if (args.empty() || args[0] != "test") return usage_error("auth", "the only subcommand is test");
    std::string user;
    bool from_stdin = false;
    std::string service = "mailctl";
    std::string rip;
    for (size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "--password-stdin") from_stdin = true;
        else if (args[i] == "--service" && i + 1 < args.size()) service = args[++i];
        else if (args[i] == "--rip" && i + 1 < args.size()) rip = args[++i];
        else if (!args[i].empty() && args[i][0] == '-') return usage_error("auth", "unknown option '" + args[i] + "'");
        else if (user.empty()) user = args[i];
        else return usage_error("auth", "passwords are never taken from the command line: use --password-stdin or the prompt");
    }
    if (user.empty()) return usage_error("auth", "missing USER");
    auto config = load_config(ctx);
    if (!config) return kExitFailure;
    auto password = read_new_password(from_stdin, false);
    if (!password) {
        print_error(password.message());
        return kExitFailure;
    }
    std::string socket = config->get("auth_socket");
    auto probe = ipc::connect_unix(socket);
    if (!probe) return print_answer(offline_check(*config, user, *password), "offline: auth daemon not running, users file read directly");
    probe->reset();

    event::Base base = event::make_base();
    auth::Client client(base.get(), socket, std::chrono::seconds(30));
    auth::Request request;
    request.mechanism = "PLAIN";
    request.credentials.authcid = user;
    request.credentials.password = *password;
    request.client_ip = rip;
    request.service = service;
    request.secured = true;
    std::optional<auth::Answer> answer;
    client.check(request, [&](const auth::Answer& a) {
        answer = a;
        event_base_loopexit(base.get(), nullptr);
    });
    event_base_dispatch(base.get());
    if (!answer) {
        print_error("no answer from the auth daemon");
        return kExitFailure;
    }
    return print_answer(*answer, "auth daemon at " + socket);
}

}  // namespace tern::mailctl
