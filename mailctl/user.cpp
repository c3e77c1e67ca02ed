// `mailctl user`: the virtual mailbox users in the users file
// (virtual_mailbox_maps) and their hashes in the password file
// (auth_password_file, lib/tables/passwords.hpp).  Passwords come from a
// prompt without echo or from --password-stdin, never from argv (visible
// in ps and shell history), and are stored hashed (auth_password_scheme,
// yescrypt by default).
//
//   mailctl user add ADDRESS [--password-stdin] [--quota SIZE] [--home DIR]
//   mailctl user passwd ADDRESS [--password-stdin]
//   mailctl user del ADDRESS
//   mailctl user list [DOMAIN]
//   mailctl user convert        (upgrade: hashes from the users file to the password file)
#include <iostream>

#include "lib/auth/password.hpp"
#include "lib/tables/domains.hpp"
#include "lib/tables/passwords.hpp"
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

// The users file (mailbox data) and the password file (hashes) together.
struct UserFiles {
    TextFile users;
    TextFile passwd;
};

Result<UserFiles> read_files(const config::Config& config) {
    auto users = TextFile::read(config.get("virtual_mailbox_maps"));
    if (!users) return users.error();
    auto passwd = TextFile::read(config.get("auth_password_file"));
    if (!passwd) return passwd.error();
    return UserFiles{std::move(*users), std::move(*passwd)};
}

// The password field of a users-file line ("" when empty or absent).
std::string hash_of_line(const std::string& line) {
    size_t first = line.find(':');
    if (first == std::string::npos) return "";
    size_t second = line.find(':', first + 1);
    std::string h = line.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
    while (!h.empty() && (h.back() == ' ' || h.back() == '\t' || h.back() == '\r')) h.pop_back();
    while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.erase(0, 1);
    return h;
}

// The line with an empty password field: "a:HASH:1:2" → "a::1:2", "a:HASH" → "a:".
std::string without_hash(const std::string& line) {
    size_t first = line.find(':');
    if (first == std::string::npos) return line;
    size_t second = line.find(':', first + 1);
    return line.substr(0, first + 1) + (second == std::string::npos ? "" : line.substr(second));
}

void set_hash(TextFile& passwd, const std::string& address, const std::string& hash) {
    std::string line = address + ":" + hash;
    if (auto i = find_user_line(passwd, address)) passwd.lines[*i] = line;
    else passwd.lines.push_back(line);
}

// Writes the password file (0640, root:tern-auth when new), then the users
// file, and recompiles users.lmdb.
int save(UserFiles& files, const std::string& done) {
    if (auto w = files.passwd.write(0640, "tern-auth"); !w) {
        print_error(w.message());
        return kExitFailure;
    }
    if (auto w = files.users.write(0640); !w) {
        print_error(w.message());
        return kExitFailure;
    }
    if (auto c = tables::compile_users(files.users.path); !c) {
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
    auto files = read_files(config);
    if (!files) {
        print_error(files.message());
        return kExitFailure;
    }
    if (find_user_line(files->users, address)) {
        print_error(address + " exists already (mailctl user passwd changes the password)");
        return kExitFailure;
    }
    auto hash = new_hash(config, o.password_stdin);
    if (!hash) {
        print_error(hash.message());
        return kExitFailure;
    }
    // Fields: address:password:uid:gid:home:extra (uid, gid empty: vmail_user);
    // the password field stays empty, the hash goes to the password file.
    std::string line = address + ":";
    if (!o.quota.empty() || !o.home.empty()) line += ":::" + o.home + ":" + (o.quota.empty() ? "" : "quota=" + o.quota);
    // Validate the lines exactly as the daemons will read them.
    for (const auto& check : {line, address + ":" + *hash}) {
        auto parsed = tables::parse_users(check, "new user");
        if (!parsed.diagnostics.empty()) {
            print_error(parsed.diagnostics.front());
            return kExitFailure;
        }
    }
    set_hash(files->passwd, address, *hash);
    files->users.lines.push_back(line);
    // The mailbox itself appears with the first delivery (local-delivery)
    // or login; the mail store's new-user hook (SPECIAL-USE folders) runs there.
    return save(*files, "added " + address);
}

// Both files and the users-file line of an existing user; prints why not.
std::optional<std::pair<UserFiles, size_t>> existing_user(const config::Config& config, const std::string& address) {
    auto files = read_files(config);
    if (!files) {
        print_error(files.message());
        return std::nullopt;
    }
    auto index = find_user_line(files->users, address);
    if (!index) {
        print_error("no such user: " + lower(address));
        return std::nullopt;
    }
    return std::make_pair(std::move(*files), *index);
}

int user_passwd(const config::Config& config, const UserOptions& o) {
    auto found = existing_user(config, o.address);
    if (!found) return kExitFailure;
    auto& [files, index] = *found;
    auto hash = new_hash(config, o.password_stdin);
    if (!hash) {
        print_error(hash.message());
        return kExitFailure;
    }
    set_hash(files.passwd, lower(o.address), *hash);
    files.users.lines[index] = without_hash(files.users.lines[index]);  // an older file's hash goes
    return save(files, "password changed for " + lower(o.address));
}

int user_del(const config::Config& config, const UserOptions& o) {
    auto found = existing_user(config, o.address);
    if (!found) return kExitFailure;
    auto& [files, index] = *found;
    files.users.lines.erase(files.users.lines.begin() + static_cast<long>(index));
    while (auto i = find_user_line(files.passwd, o.address))
        files.passwd.lines.erase(files.passwd.lines.begin() + static_cast<long>(*i));
    return save(files, "deleted " + lower(o.address) + " (the mailbox directory is kept)");
}

// Moves the hashes an older users file holds into the password file (the
// upgrade step; setup-system runs it).  A hash already in the password
// file wins.  Nothing is written when there is nothing to move.
int user_convert(const config::Config& config) {
    auto files = read_files(config);
    if (!files) {
        print_error(files.message());
        return kExitFailure;
    }
    size_t moved = 0;
    for (auto& line : files->users.lines) {
        std::string address = user_of_line(line);
        std::string hash = hash_of_line(line);
        if (address.empty() || hash.empty()) continue;
        if (!find_user_line(files->passwd, address)) files->passwd.lines.push_back(address + ":" + hash);
        line = without_hash(line);
        ++moved;
    }
    if (moved == 0) {
        std::cout << "no password hashes in " << files->users.path << "\n";
        return kExitOk;
    }
    return save(*files, "moved " + std::to_string(moved) + " password hashes from " + files->users.path + " to " +
                            files->passwd.path);
}

int user_list(const config::Config& config, const std::vector<std::string>& args) {
    if (args.size() > 2) return usage_error("user", "list takes at most one DOMAIN");
    std::string domain = args.size() == 2 ? lower(args[1]) : "";
    auto files = read_files(config);
    if (!files) {
        print_error(files.message());
        return kExitFailure;
    }
    std::string users_text, passwd_text;
    for (const auto& l : files->users.lines) users_text += l + "\n";
    for (const auto& l : files->passwd.lines) passwd_text += l + "\n";
    auto parsed = tables::merge_passwords(users_text, files->users.path, passwd_text, files->passwd.path);
    for (const auto& d : parsed.diagnostics) std::cerr << "mailctl: warning: " << d << "\n";
    if (parsed.legacy > 0)
        std::cerr << "mailctl: warning: " << files->users.path << " holds " << parsed.legacy
                  << " password hashes: run `mailctl user convert`\n";
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
    if (args.empty()) return usage_error("user", "missing subcommand (add, del, passwd, list or convert)");
    const std::string& sub = args[0];
    if (sub != "add" && sub != "del" && sub != "passwd" && sub != "list" && sub != "convert")
        return usage_error("user", "unknown subcommand '" + sub + "'");
    auto config = load_config(ctx);
    if (!config) return kExitFailure;
    if (sub == "list") return user_list(*config, args);
    if (sub == "convert") {
        if (args.size() > 1) return usage_error("user", "convert takes no arguments");
        return user_convert(*config);
    }
    auto o = parse_options(args, sub == "add");
    if (!o) return usage_error("user", o.message());
    if (sub == "del" && o->password_stdin) return usage_error("user", "del takes no password");
    if (sub == "add") return user_add(*config, *o);
    if (sub == "passwd") return user_passwd(*config, *o);
    return user_del(*config, *o);
}

}  // namespace tern::mailctl
