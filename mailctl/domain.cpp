// `mailctl domain`: the virtual mailbox domains.  virtual_mailbox_domains
// lists domain names and files of domains; add and del edit the first file
// it lists (e.g. `virtual_mailbox_domains = $config_directory/domains`),
// names written in tern.conf itself are shown but changed only there.
//
//   mailctl domain add DOMAIN
//   mailctl domain del DOMAIN [--force]   (refused while users of it exist)
//   mailctl domain list
#include <iostream>

#include "lib/tables/domains.hpp"
#include "lib/tables/users.hpp"
#include "mailctl/commands.hpp"
#include "mailctl/users_file.hpp"

namespace tern::mailctl {
namespace {

std::string normal(std::string d) {
    for (auto& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!d.empty() && d.back() == '.') d.pop_back();
    return d;
}

bool valid_domain(const std::string& d) {
    if (d.empty() || d.size() > 253 || d.front() == '.' || d.front() == '-') return false;
    for (unsigned char c : d)
        if (!(std::isalnum(c) || c == '.' || c == '-' || c >= 0x80)) return false;
    return d.find("..") == std::string::npos;
}

std::string domains_file(const config::Config& config) {
    for (const auto& item : config.get_list("virtual_mailbox_domains"))
        if (!item.empty() && item.front() == '/') return item;
    return "";
}

// Users of a domain in the users file.
std::vector<std::string> users_of(const config::Config& config, const std::string& domain) {
    std::vector<std::string> out;
    auto file = TextFile::read(config.get("virtual_mailbox_maps"));
    if (!file) return out;
    for (const auto& l : file->lines) {
        std::string u = user_of_line(l);
        auto at = u.rfind('@');
        if (at != std::string::npos && u.substr(at + 1) == domain) out.push_back(u);
    }
    return out;
}

int domain_list(const config::Config& config) {
    std::string path = domains_file(config);
    for (const auto& item : config.get_list("virtual_mailbox_domains")) {
        if (!item.empty() && item.front() == '/') {
            auto file = TextFile::read(item);
            if (!file) {
                print_error(file.message());
                return kExitFailure;
            }
            std::string text;
            for (const auto& l : file->lines) text += l + "\n";
            for (const auto& d : tables::parse_domain_list(text, item))
                std::cout << d << "  users=" << users_of(config, d).size() << "  (" << item << ")\n";
        } else {
            std::string d = normal(item);
            std::cout << d << "  users=" << users_of(config, d).size() << "  (tern.conf)\n";
        }
    }
    return kExitOk;
}

}  // namespace

int cmd_domain(Context& ctx, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << find_command("domain")->usage;
        return kExitOk;
    }
    if (args.empty()) return usage_error("domain", "missing subcommand (add, del or list)");
    const std::string& sub = args[0];
    auto config = load_config(ctx);
    if (!config) return kExitFailure;
    if (sub == "list") {
        if (args.size() != 1) return usage_error("domain", "list takes no arguments");
        return domain_list(*config);
    }
    if (sub != "add" && sub != "del") return usage_error("domain", "unknown subcommand '" + sub + "'");
    bool force = args.size() == 3 && args[2] == "--force" && sub == "del";
    if (args.size() != 2 && !force) return usage_error("domain", sub + " takes one DOMAIN");
    std::string domain = normal(args[1]);
    if (!valid_domain(domain)) return usage_error("domain", "'" + args[1] + "' is not a domain name");
    std::string path = domains_file(*config);
    if (path.empty()) {
        print_error("virtual_mailbox_domains lists no file to edit; add one in tern.conf, e.g. "
                    "virtual_mailbox_domains = $config_directory/domains");
        return kExitFailure;
    }
    auto file = TextFile::read(path);
    if (!file) {
        print_error(file.message());
        return kExitFailure;
    }
    std::optional<size_t> index;
    for (size_t i = 0; i < file->lines.size(); ++i) {
        std::string t = normal(file->lines[i]);
        while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
        while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.erase(0, 1);
        if (t == domain) index = i;
    }
    if (sub == "add") {
        auto existing = tables::DomainList::load(config->get_list("virtual_mailbox_domains"));
        if (index || (existing && existing->contains(domain))) {
            print_error(domain + " is a virtual mailbox domain already");
            return kExitFailure;
        }
        file->lines.push_back(domain);
    } else {
        if (!index) {
            print_error(domain + " is not in " + path + (file->existed ? "" : " (no such file)"));
            return kExitFailure;
        }
        auto users = users_of(*config, domain);
        if (!users.empty() && !force) {
            print_error(domain + " still has " + std::to_string(users.size()) +
                        " users (mailctl user del them first, or --force to keep them without a domain)");
            return kExitFailure;
        }
        file->lines.erase(file->lines.begin() + static_cast<long>(*index));
    }
    if (auto w = file->write(0644); !w) {
        print_error(w.message());
        return kExitFailure;
    }
    std::cout << (sub == "add" ? "added " : "deleted ") << domain << "\n";
    return kExitOk;
}

}  // namespace tern::mailctl
