// RecipientCheck: see recipient_check.hpp.
#include "lib/tables/recipient_check.hpp"

#include <pwd.h>
#include <sys/stat.h>

#include <cerrno>

#include "lib/log/log.hpp"
#include "lib/tables/address.hpp"

namespace tern::tables {
namespace {

bool system_user_exists(const std::string& name) {
    if (name.empty() || name.find('/') != std::string::npos) return false;
    struct passwd pw {};
    struct passwd* found = nullptr;
    char buf[4096];
    return ::getpwnam_r(name.c_str(), &pw, buf, sizeof buf, &found) == 0 && found != nullptr;
}

std::vector<std::string> candidates(const std::string& local, const std::string& delimiters) {
    std::vector<std::string> out{local};
    std::string bare = strip_extension(local, delimiters);
    if (bare != local) out.push_back(std::move(bare));
    return out;
}

}  // namespace

Result<RecipientCheck> RecipientCheck::open(const config::Config& config) {
    RecipientCheck check;
    auto local = DomainList::load(config.get_list("mydestination"));
    if (!local) return make_error("mydestination: " + local.message());
    check.local_domains_ = std::move(*local);
    auto virt = DomainList::load(config.get_list("virtual_mailbox_domains"));
    if (!virt) return make_error("virtual_mailbox_domains: " + virt.message());
    check.virtual_domains_ = std::move(*virt);
    check.alias_paths_ = config.get_list("alias_maps");
    check.users_path_ = config.get("virtual_mailbox_maps");
    check.delimiters_ = config.get("recipient_delimiter");
    check.transport_path_ = config.get("transport_maps");
    check.tables_ok_ = false;
    // A table we cannot open is not fatal: the check answers Unavailable
    // (4xx at RCPT, deferral in local-delivery) until it can be opened.
    (void)check.reload_if_changed();
    return check;
}

namespace {
// No table file at all is a normal configuration (no aliases, no virtual
// users), not an outage.
bool absent(const std::string& path) {
    struct stat st {};
    return path.empty() || (::stat(path.c_str(), &st) != 0 && errno == ENOENT);
}
}  // namespace

bool RecipientCheck::tables_unchanged() const {
    size_t present = 0;
    for (const auto& path : alias_paths_) present += !absent(path);
    if (present != aliases_.size() || absent(users_path_) == users_.has_value()) return false;
    if (absent(transport_path_) == transports_.has_value()) return false;
    for (const auto& table : aliases_)
        if (table.changed()) return false;
    return !users_ || !users_->changed();
}

Status RecipientCheck::reload_if_changed() {
    Status failure;
    auto note = [&](const Status& st) {
        if (!st && failure.ok()) failure = st;
    };
    note(local_domains_.reload_if_changed());
    note(virtual_domains_.reload_if_changed());
    if (transports_) note(transports_->refresh());
    if (tables_ok_ && tables_unchanged()) return failure;

    // Something changed (edited, created, removed) or was unusable: open
    // everything again; each open rebuilds a stale compiled file or refuses it.
    bool ok = true;
    std::vector<AliasTable> opened;
    for (const auto& path : alias_paths_) {
        if (absent(path)) continue;
        auto table = AliasTable::open(path);
        if (!table) {
            ok = false;
            note(table.error());
            continue;
        }
        opened.push_back(std::move(*table));
    }
    std::optional<UsersTable> users;
    if (!absent(users_path_)) {
        auto u = UsersTable::open(users_path_);
        if (u) users.emplace(std::move(*u));
        else { ok = false; note(u.error()); }
    }
    std::optional<DomainMap> transports;
    if (!absent(transport_path_)) {
        auto t = DomainMap::open(transport_path_);
        if (t) transports.emplace(std::move(*t));
        else { ok = false; note(make_error("transport_maps: " + t.message())); }
    }
    aliases_ = std::move(opened);
    users_ = std::move(users);
    transports_ = std::move(transports);
    if (!ok && tables_ok_) log::error("lookup tables unusable, recipients answer 'try again': %s",
                                      failure.message().c_str());
    if (ok && !tables_ok_) log::debug("lookup tables opened");
    tables_ok_ = ok;
    return failure;
}

RecipientCheck::Domain RecipientCheck::classify_domain(std::string_view domain) const {
    if (domain.empty() || local_domains_.contains(domain)) return Domain::Local;
    if (virtual_domains_.contains(domain)) return Domain::Virtual;
    // Postfix's transport(5) `local`: the domain is delivered here, by local
    // part, exactly like a mydestination domain (qmgr routes it the same way).
    if (transports_) {
        auto entry = transports_->lookup(domain);
        if (!entry) return Domain::Unavailable;
        if (*entry) {
            auto transport = parse_transport(**entry);
            if (transport && transport->kind == TransportEntry::Kind::Local) return Domain::Local;
        }
    }
    return Domain::Remote;
}

Result<std::optional<std::vector<AliasTarget>>> RecipientCheck::lookup_alias(std::string_view key,
                                                                           size_t* table_index) const {
    for (size_t i = 0; i < aliases_.size(); ++i) {
        auto found = aliases_[i].lookup(key);
        if (!found) return found.error();
        if (*found) {
            if (table_index) *table_index = i;
            return found;
        }
    }
    return std::optional<std::vector<AliasTarget>>{};
}

RecipientCheck::Answer RecipientCheck::check_local(const std::string& local) const {
    if (local == "postmaster" || local == "root") return Answer::Yes;
    if (!tables_ok_) return Answer::Unavailable;
    for (const auto& name : candidates(local, delimiters_)) {
        auto alias = lookup_alias(name);
        if (!alias) return Answer::Unavailable;
        if (*alias) return Answer::Yes;
        if (system_user_exists(name)) return Answer::Yes;
    }
    return Answer::No;
}

RecipientCheck::Answer RecipientCheck::check_virtual(const std::string& local, const std::string& domain) const {
    if (local == "postmaster") return Answer::Yes;
    if (!tables_ok_) return Answer::Unavailable;
    for (const auto& name : candidates(local, delimiters_)) {
        std::string address = name + "@" + domain;
        if (users_) {
            auto user = users_->lookup(address);
            if (!user) return Answer::Unavailable;
            if (*user) return Answer::Yes;
        }
        auto alias = lookup_alias(address);
        if (!alias) return Answer::Unavailable;
        if (*alias) return Answer::Yes;
    }
    return Answer::No;
}

RecipientCheck::Answer RecipientCheck::check(std::string_view address) const {
    AddressParts parts = split_address(address);
    std::string local = lowercase(parts.local);
    switch (classify_domain(parts.domain)) {
        case Domain::Remote: return Answer::Yes;
        case Domain::Local: return check_local(local);
        case Domain::Virtual: return check_virtual(local, parts.domain);
        case Domain::Unavailable: return Answer::Unavailable;
    }
    return Answer::Unavailable;
}

bool RecipientCheck::exists(std::string_view address) const { return check(address) != Answer::No; }

}  // namespace tern::tables
