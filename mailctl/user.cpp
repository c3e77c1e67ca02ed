// `mailctl user`: the virtual mailbox users in the users file
// (virtual_mailbox_maps).  Passwords come from a prompt without echo or
// from --password-stdin, never from argv (visible in ps and shell history),
// and are stored hashed (auth_password_scheme, yescrypt by default).
//
//   mailctl user add ADDRESS [--password-stdin] [--quota SIZE] [--home DIR]
//   mailctl user passwd ADDRESS [--password-stdin]
//   mailctl user del ADDRESS
//   mailctl user list [DOMAIN]
#include <iostream>

#include "lib/auth/password.hpp"
#include "lib/tables/domains.hpp"
#include "lib/tables/users.hpp"
#include "mailctl/commands.hpp"
#include "mailctl/users_file.hpp"

namespace tern::mailctl {
namespace {

struct UserOptions {
    std::string address;
    bool password_stdin = false;
    std::string quota;
    std::string home;
};

Result<UserOptions> parse_options(const std::vector<std::string>& args, bool allow_extras) {
    UserOptions o;
    for (size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--password-stdin") {
            o.password_stdin = true;
        } else if (allow_extras && (a == "--quota" || a == "--home") && i + 1 < args.size()) {
            (a == "--quota" ? o.quota : o.home) = args[++i];
        } else if (a == "--password" || a.rfind("--password=", 0) == 0) {
            return make_error("passwords are never taken from the command line: use --password-stdin or the prompt");
        } else if (!a.empty() && a[0] == '-') {
            return make_error("unknown option '" + a + "'");
        } else if (o.address.empty()) {
            o.address = a;
        } else {
            return make_error("unexpected argument '" + a + "'");
        }
    }
    if (o.address.empty()) return make_error("missing ADDRESS");
    return o;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

Result<std::string> new_hash(const config::Config& config, bool from_stdin) {
    auto scheme = auth::parse_scheme(config.get("auth_password_scheme"));
    if (!scheme) return scheme.error();
    auto pw = read_new_password(from_stdin, !from_stdin);
    if (!pw) return pw.error();
    return auth::hash_password(*pw, *scheme);
}

// Writes the users file and recompiles users.lmdb.
int save(const TextFile& file, const std::string& done) {
    if (auto w = file.write(0640); !w) {
        print_error(w.message());
        return kExitFailure;
    }
    if (auto c = tables::compile_users(file.path); !c) {
        print_error("users file written, but compiling it failed: " + c.message());
        return kExitFailure;
    }
    std::cout << done << "\n";
    return kExitOk;
}

int user_add(const config::Config& config, const UserOptions& o) {
    std::string address = lower(o.address);
    auto at = address.rfind('@');
    if (at == std::string::npos || at == 0 || at + 1 == address.size())
        return usage_error("user", "ADDRESS must be user@domain");
    auto domains = tables::DomainList::load(config.get_list("virtual_mailbox_domains"));
    if (!domains) {
        print_error(domains.message());
        return kExitFailure;
    }
    if (!domains->contains(address.substr(at + 1))) {
        print_error(address.substr(at + 1) + " is not a virtual mailbox domain: run `mailctl domain add " +
                    address.substr(at + 1) + "` first");
        return kExitFailure;
    }
    auto file = TextFile::read(config.get("virtual_mailbox_maps"));
    if (!file) {
        print_error(file.message());
        return kExitFailure;
    }
    if (find_user_line(*file, address)) {
        print_error(address + " exists already (mailctl user passwd changes the password)");
        return kExitFailure;
    }
    auto hash = new_hash(config, o.password_stdin);
    if (!hash) {
        print_error(hash.message());
        return kExitFailure;
    }
    std::string line = address + ":" + *hash;
    // Fields: address:password:uid:gid:home:extra (uid, gid empty: vmail_user).
    if (!o.quota.empty() || !o.home.empty()) line += ":::" + o.home + ":" + (o.quota.empty() ? "" : "quota=" + o.quota);
    // Validate the line exactly as the daemons will read it.
    auto parsed = tables::parse_users(line, "new user");
    if (!parsed.diagnostics.empty()) {
        print_error(parsed.diagnostics.front());
        return kExitFailure;
    }
    file->lines.push_back(line);
    // The mailbox itself appears with the first delivery (local-delivery)
    // or login; the mail store's new-user hook (SPECIAL-USE folders) runs there.
    return save(*file, "added " + address);
}

// The users file and the line of an existing user; prints why not.
std::optional<std::pair<TextFile, size_t>> existing_user(const config::Config& config, const std::string& address) {
    auto file = TextFile::read(config.get("virtual_mailbox_maps"));
    if (!file) {
        print_error(file.message());
        return std::nullopt;
    }
    auto index = find_user_line(*file, address);
    if (!index) {
        print_error("no such user: " + lower(address));
        return std::nullopt;
    }
    return std::make_pair(std::move(*file), *index);
}

int user_passwd(const config::Config& config, const UserOptions& o) {
    auto found = existing_user(config, o.address);
    if (!found) return kExitFailure;
    auto& [file, index] = *found;
    auto hash = new_hash(config, o.password_stdin);
    if (!hash) {
        print_error(hash.message());
        return kExitFailure;
    }
    std::string& line = file.lines[index];
    size_t first = line.find(':');
    size_t second = line.find(':', first + 1);
    line = line.substr(0, first + 1) + *hash + (second == std::string::npos ? "" : line.substr(second));
    return save(file, "password changed for " + lower(o.address));
}

int user_del(const config::Config& config, const UserOptions& o) {
    auto found = existing_user(config, o.address);
    if (!found) return kExitFailure;
    auto& [file, index] = *found;
    file.lines.erase(file.lines.begin() + static_cast<long>(index));
    return save(file, "deleted " + lower(o.address) + " (the mailbox directory is kept)");
}

int user_list(const config::Config& config, const std::vector<std::string>& args) {
    if (args.size() > 2) return usage_error("user", "list takes at most one DOMAIN");
    std::string domain = args.size() == 2 ? lower(args[1]) : "";
    auto file = TextFile::read(config.get("virtual_mailbox_maps"));
    if (!file) {
        print_error(file.message());
        return kExitFailure;
    }
    std::string text;
    for (const auto& l : file->lines) text += l + "\n";
    auto parsed = tables::parse_users(text, file->path);
    for (const auto& d : parsed.diagnostics) std::cerr << "mailctl: warning: " << d << "\n";
    for (const auto& u : parsed.users) {
        if (!domain.empty() && u.address.substr(u.address.rfind('@') + 1) != domain) continue;
        std::string scheme = "?";
        if (!u.password.empty() && u.password.front() == '{') scheme = u.password.substr(1, u.password.find('}') - 1);
        else if (!u.password.empty() && u.password.front() == '$') scheme = "CRYPT";
        std::cout << u.address << "  " << scheme;
        if (u.quota) std::cout << "  quota=" << u.quota;
        if (!u.home.empty()) std::cout << "  home=" << u.home;
        std::cout << "\n";
    }
    return kExitOk;
}

}  // namespace

int cmd_user(Context& ctx, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << find_command("user")->usage;
        return kExitOk;
    }
    if (args.empty()) return usage_error("user", "missing subcommand (add, del, passwd or list)");
    const std::string& sub = args[0];
    if (sub != "add" && sub != "del" && sub != "passwd" && sub != "list")
        return usage_error("user", "unknown subcommand '" + sub + "'");
    auto config = load_config(ctx);
    if (!config) return kExitFailure;
    if (sub == "list") return user_list(*config, args);
    auto o = parse_options(args, sub == "add");
    if (!o) return usage_error("user", o.message());
    if (sub == "del" && o->password_stdin) return usage_error("user", "del takes no password");
    if (sub == "add") return user_add(*config, *o);
    if (sub == "passwd") return user_passwd(*config, *o);
    return user_del(*config, *o);
}

}  // namespace tern::mailctl
