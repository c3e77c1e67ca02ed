// Recipient resolution: see resolve.hpp.
#include "local-delivery/resolve.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <optional>

#include "lib/core/fd.hpp"

#include "lib/log/log.hpp"
#include "lib/maildir/maildir.hpp"
#include "lib/sys/files.hpp"
#include "lib/tables/address.hpp"

namespace tern::local {
namespace {

constexpr int kMaxDepth = 20;  // Postfix's local uses a similar bound for nested expansion
constexpr size_t kMaxForwardFile = 64 * 1024;

// vmail_user's ids, looked up at most once a minute: every virtual
// delivery needs them, and a lookup reads the whole passwd file (nsswitch
// checked, open, read, close).  A changed uid is seen within a minute.
Result<Identity> vmail_identity(const std::string& name) {
    static std::string cached_name;
    static std::optional<Identity> cached;
    static int64_t expires = 0;
    const int64_t now = ::time(nullptr);
    if (cached && cached_name == name && now < expires) return *cached;
    auto found = lookup_identity(name);
    if (!found) {
        cached.reset();
        return found;
    }
    cached_name = name;
    cached = *found;
    expires = now + 60;
    return found;
}

// Reads a .forward or :include: file without following a symlink.
// Returns nullopt when absent; *owner/*mode describe the file read.
Result<std::optional<std::string>> read_small_file(const std::string& path, uid_t* owner, mode_t* mode) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd) {
        if (errno == ENOENT || errno == ENOTDIR) return std::optional<std::string>{};
        return make_error("cannot open " + path + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        return make_error(path + " is not a regular file");
    if (static_cast<size_t>(st.st_size) > kMaxForwardFile) return make_error(path + " is too large");
    *owner = st.st_uid;
    *mode = st.st_mode;
    std::string text;
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) {
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > kMaxForwardFile) return make_error(path + " is too large");
    }
    if (n < 0) return make_error("cannot read " + path + ": " + std::strerror(errno));
    return std::optional<std::string>(std::move(text));
}

bool unsafe_name(const std::string& name) {
    return name.empty() || name.find('/') != std::string::npos || name == "." || name == "..";
}

}  // namespace

struct Resolver::State {
    Resolution result;
    std::vector<std::string> chain;  // names being expanded (loop guard)
    void fail(DeliveryResult r) {
        if (!result.failure || r.outcome == delivery::Outcome::Deferred) result.failure = std::move(r);
    }
    bool failed() const { return result.failure.has_value(); }
    bool in_chain(const std::string& key) const { return std::find(chain.begin(), chain.end(), key) != chain.end(); }
    void add(Destination d) {
        for (const auto& seen : result.destinations)
            if (seen == d) return;  // duplicates collapse, as in Postfix
        result.destinations.push_back(std::move(d));
    }
};

Resolution Resolver::resolve(std::string_view address) const {
    State st;
    if (!tables_.tables_usable()) {
        st.fail(DeliveryResult::defer("4.3.0", "lookup tables are unavailable (stale or unreadable); see the log"));
        return std::move(st.result);
    }
    Origin top;
    top.trusted = false;
    expand(st, std::string(address), top, 0, false);
    if (!st.failed() && st.result.destinations.empty())
        st.fail(DeliveryResult::bounce("5.1.1", "alias expansion of " + std::string(address) + " is empty"));
    return std::move(st.result);
}

void Resolver::expand(State& st, const std::string& address, const Origin& origin, int depth, bool no_expand) const {
    if (st.failed()) return;
    if (depth > kMaxDepth) {
        st.fail(DeliveryResult::bounce("5.4.6", "mail forwarding loop: alias expansion nested too deeply at " + address));
        return;
    }
    auto parts = tables::split_address(address);
    if (parts.local.empty()) {
        st.fail(DeliveryResult::bounce("5.1.3", "bad address syntax: \"" + address + "\""));
        return;
    }
    std::string local = tables::lowercase(parts.local);
    switch (tables_.classify_domain(parts.domain)) {
        case tables::RecipientCheck::Domain::Remote: {
            Destination d;
            d.kind = DestKind::Forward;
            d.address = address;
            d.path = address;
            d.via = origin.where;
            st.add(std::move(d));
            return;
        }
        case tables::RecipientCheck::Domain::Local:
            expand_local(st, local, address, origin, depth, no_expand);
            return;
        case tables::RecipientCheck::Domain::Virtual:
            expand_virtual(st, local, parts.domain, origin, depth);
            return;
        case tables::RecipientCheck::Domain::Unavailable:
            st.fail(DeliveryResult::defer("4.3.0", "transport_maps lookup failed for " + address + "; see the log"));
            return;
    }
}

Resolver::Origin Resolver::alias_origin(size_t table_index, const std::string& name) const {
    Origin o;
    o.kind = "alias";
    o.where = "alias " + name;
    uid_t owner = tables_.aliases()[table_index].owner();
    if (running_as_root()) {
        o.trusted = owner == 0;
        auto privs = lookup_identity(settings_.default_privs);
        if (privs) o.run_as = *privs;
        else o.trusted = false;  // nobody to run as: refuse rather than run as root
    } else {
        o.trusted = owner == 0 || owner == ::getuid();
        o.run_as = current_identity();
    }
    return o;
}

Result<Identity> Resolver::privileged_or_default(const Identity& who) const {
    if (!running_as_root()) return current_identity();
    if (who.uid != 0) return who;
    // Commands and files are never run as root on behalf of mail.
    return lookup_identity(settings_.default_privs);
}

void Resolver::expand_local(State& st, const std::string& local, const std::string& display, const Origin& origin,
                            int depth, bool no_expand) const {
    std::string bare = tables::strip_extension(local, settings_.delimiters);
    std::string extension = tables::extension_of(local, settings_.delimiters);
    if (!no_expand) {
        for (const auto& key : {local, bare}) {
            if (st.in_chain("alias:" + key)) continue;
            size_t index = 0;
            auto targets = tables_.lookup_alias(key, &index);
            if (!targets) {
                st.fail(DeliveryResult::defer("4.3.0", "alias table lookup failed: " + targets.message()));
                return;
            }
            if (!*targets) continue;
            st.chain.push_back("alias:" + key);
            expand_targets(st, **targets, alias_origin(index, key), display, depth);
            st.chain.pop_back();
            return;
        }
    }
    std::optional<Identity> user;
    for (const auto& name : {local, bare}) {
        if (unsafe_name(name)) continue;
        if (auto found = lookup_identity(name)) { user = *found; break; }
    }
    if (!user && (bare == "postmaster" || bare == "mailer-daemon")) {
        // RFC 5321 4.5.1: postmaster must work even without an alias.
        if (auto root = lookup_identity(uid_t{0})) user = *root;
    }
    if (!user) {
        st.fail(DeliveryResult::bounce("5.1.1", "unknown user: \"" + local + "\""));
        return;
    }
    if (!no_expand && !st.in_chain("forward:" + user->name)) {
        std::string path = user->home + "/.forward";
        uid_t owner = 0;
        mode_t mode = 0;
        auto text = read_small_file(path, &owner, &mode);
        if (!text) {
            log::warning("ignoring %s: %s", path.c_str(), text.message().c_str());
        } else if (*text) {
            if ((owner != user->uid && owner != 0) || (mode & 022) != 0) {
                log::warning("ignoring %s: not owned by %s or writable by others", path.c_str(), user->name.c_str());
            } else {
                std::vector<std::string> diags;
                auto list = tables::parse_target_list(**text, &diags);
                for (const auto& d : diags) log::warning("%s: %s", path.c_str(), d.c_str());
                if (!list.empty()) {
                    Origin fwd;
                    fwd.kind = "forward";
                    fwd.where = ".forward of " + user->name;
                    auto run_as = privileged_or_default(*user);
                    fwd.trusted = run_as.ok();
                    if (run_as) fwd.run_as = *run_as;
                    if (!running_as_root() && owner != ::getuid() && owner != 0) fwd.trusted = false;
                    std::vector<tables::AliasTarget> targets;
                    for (const auto& t : list) targets.push_back(tables::classify_target(t));
                    st.chain.push_back("forward:" + user->name);
                    st.chain.push_back("alias:" + user->name);  // "alice" in alice's .forward means her mailbox
                    expand_targets(st, targets, fwd, display, depth);
                    st.chain.pop_back();
                    st.chain.pop_back();
                    return;
                }
            }
        }
    }
    (void)origin;
    mailbox_for(st, *user, display, extension);
}

void Resolver::mailbox_for(State& st, const Identity& user, const std::string& address,
                           const std::string& extension) const {
    Destination d;
    d.address = address;
    d.as = running_as_root() ? user : current_identity();
    d.extension = extension;
    const std::string& hm = settings_.home_mailbox;
    if (hm.empty()) {
        d.kind = DestKind::Mailbox;
        d.path = settings_.mail_spool_directory + "/" + user.name;
    } else if (hm.back() == '/') {
        d.kind = DestKind::HomeMaildir;
        d.path = user.home + "/" + hm.substr(0, hm.size() - 1);
    } else {
        d.kind = DestKind::File;  // an mbox in the home, written as the user
        d.path = user.home + "/" + hm;
    }
    st.add(std::move(d));
}

void Resolver::expand_virtual(State& st, const std::string& local, const std::string& domain, const Origin& origin,
                              int depth) const {
    std::string bare = tables::strip_extension(local, settings_.delimiters);
    std::string extension = tables::extension_of(local, settings_.delimiters);
    const auto& users = tables_.users();
    for (const auto& name : {local, bare}) {
        std::string address = name + "@" + domain;
        if (users) {
            auto user = users->lookup(address);
            if (!user) {
                st.fail(DeliveryResult::defer("4.3.0", "users table lookup failed: " + user.message()));
                return;
            }
            if (*user) {
                Destination d;
                d.kind = DestKind::VirtualMailbox;
                d.address = address;
                d.extension = extension;
                auto dir = maildir::virtual_maildir(settings_.mail_directory, address, (*user)->home);
                if (!dir) {
                    st.fail(DeliveryResult::bounce("5.1.3", dir.message()));
                    return;
                }
                d.path = *dir;
                d.quota = (*user)->quota ? (*user)->quota : settings_.virtual_mailbox_limit;
                if (!running_as_root()) {
                    d.as = current_identity();
                } else if ((*user)->uid) {
                    d.as = Identity{*(*user)->uid, (*user)->gid.value_or(*(*user)->uid), address, ""};
                } else {
                    auto vmail = vmail_identity(settings_.vmail_user);
                    if (!vmail) {
                        st.fail(DeliveryResult::defer("4.3.5", "vmail_user: " + vmail.message()));
                        return;
                    }
                    d.as = *vmail;
                }
                st.add(std::move(d));
                return;
            }
        }
        if (st.in_chain("alias:" + address)) continue;
        size_t index = 0;
        auto targets = tables_.lookup_alias(address, &index);
        if (!targets) {
            st.fail(DeliveryResult::defer("4.3.0", "alias table lookup failed: " + targets.message()));
            return;
        }
        if (*targets) {
            st.chain.push_back("alias:" + address);
            expand_targets(st, **targets, alias_origin(index, address), address, depth);
            st.chain.pop_back();
            return;
        }
    }
    if (bare == "postmaster" || bare == "abuse") {
        expand(st, "postmaster", origin, depth + 1, false);
        return;
    }
    st.fail(DeliveryResult::bounce("5.1.1", "unknown user: \"" + local + "@" + domain + "\""));
}

void Resolver::expand_targets(State& st, const std::vector<tables::AliasTarget>& targets, const Origin& origin,
                              const std::string& address, int depth) const {
    for (const auto& t : targets) {
        if (st.failed()) return;
        switch (t.kind) {
            case tables::TargetKind::Address:
                expand(st, t.value, origin, depth + 1, t.no_expand);
                break;
            case tables::TargetKind::Include:
                expand_include(st, t.value, origin, address, depth + 1);
                break;
            case tables::TargetKind::Command:
            case tables::TargetKind::File: {
                bool command = t.kind == tables::TargetKind::Command;
                const auto& allowed = command ? settings_.allow_commands : settings_.allow_files;
                if (!origin.trusted || !allowed.count(origin.kind)) {
                    st.fail(DeliveryResult::bounce(
                        "5.7.1", std::string(command ? "mail to command" : "mail to file") + " is restricted (" +
                                     (origin.where.empty() ? "not from an alias" : origin.where) + ")"));
                    return;
                }
                Destination d;
                d.address = address;
                d.as = origin.run_as;
                d.via = origin.where;
                d.path = t.value;
                if (command) d.kind = DestKind::Command;
                else d.kind = t.value.back() == '/' ? DestKind::FileMaildir : DestKind::File;
                if (d.path.empty()) {
                    st.fail(DeliveryResult::bounce("5.3.5", "empty command or file in " + origin.where));
                    return;
                }
                st.add(std::move(d));
                break;
            }
        }
    }
}

void Resolver::expand_include(State& st, const std::string& path, const Origin& origin, const std::string& address,
                              int depth) const {
    if (path.empty() || path.front() != '/') {
        st.fail(DeliveryResult::bounce("5.3.5", ":include: needs an absolute path in " + origin.where));
        return;
    }
    if (origin.kind != "alias" && origin.kind != "forward" && origin.kind != "include") {
        st.fail(DeliveryResult::bounce("5.7.1", ":include: is only honoured in aliases and .forward files"));
        return;
    }
    if (st.in_chain("include:" + path)) return;  // an include loop adds nothing new
    uid_t owner = 0;
    mode_t mode = 0;
    auto text = read_small_file(path, &owner, &mode);
    if (!text) {
        st.fail(DeliveryResult::defer("4.3.0", ":include: " + text.message()));
        return;
    }
    if (!*text) {
        st.fail(DeliveryResult::bounce("5.3.5", ":include: file " + path + " does not exist (" + origin.where + ")"));
        return;
    }
    Origin inc;
    inc.kind = "include";
    inc.where = ":include:" + path;
    if ((mode & 002) != 0) {
        inc.trusted = false;  // anyone could have written its commands
    } else if (running_as_root()) {
        auto who = owner == 0 ? lookup_identity(settings_.default_privs) : lookup_identity(owner);
        inc.trusted = who.ok() && origin.trusted;
        if (who) inc.run_as = *who;
    } else {
        inc.trusted = origin.trusted && (owner == 0 || owner == ::getuid());
        inc.run_as = current_identity();
    }
    std::vector<std::string> diags;
    auto list = tables::parse_target_list(**text, &diags);
    for (const auto& d : diags) log::warning("%s: %s", path.c_str(), d.c_str());
    std::vector<tables::AliasTarget> targets;
    for (const auto& t : list) targets.push_back(tables::classify_target(t));
    st.chain.push_back("include:" + path);
    expand_targets(st, targets, inc, address, depth);
    st.chain.pop_back();
}

}  // namespace tern::local
