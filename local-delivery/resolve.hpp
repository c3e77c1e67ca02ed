// Recipient resolution: from the address qmgr gave to the list of places
// the message goes, following aliases(5), :include: files and ~/.forward.
//
//   local domain:   alias (full local part, then without +extension) →
//                   system user (getpwnam) → ~/.forward → mailbox
//                   (spool mbox, or ~/Maildir/ with home_mailbox = Maildir/)
//   virtual domain: users table → Maildir under mail_directory (vmail_user);
//                   else an alias for the full address; postmaster@ goes to
//                   the local postmaster
//   other domain:   forwarded (a new message through the maildrop)
//
// Expansion is recursive with a depth limit and a loop guard: a name met
// again inside its own expansion is not expanded again (so `alice: alice,
// archive` delivers to alice's mailbox), and `\user` means "the mailbox,
// no further expansion".
//
// |command and /file targets are honoured only where allow_mail_to_commands
// / allow_mail_to_files permit (alias, forward, include) and only from a
// source the recipient's privileges can be derived from:
//   aliases file: owned by root (commands run as default_privs), or — when
//                 local-delivery does not run as root (development, tests) —
//                 owned by the running user or root;
//   ~/.forward:   owned by the user (or root), not group/world-writable; runs
//                 as the user (default_privs for root);
//   :include:     runs as the file's owner (default_privs for root); not
//                 when group/world-writable.
// Everything else is refused with 5.7.1, like Postfix's "mail to command is
// restricted".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/tables/recipient_check.hpp"
#include "local-delivery/identity.hpp"
#include "local-delivery/result.hpp"
#include "local-delivery/settings.hpp"

namespace tern::local {

enum class DestKind { Mailbox, HomeMaildir, VirtualMailbox, File, FileMaildir, Command, Forward };

struct Destination {
    DestKind kind = DestKind::Mailbox;
    std::string address;  // the address this destination was reached as (user@domain or user)
    std::string path;     // mbox path, Maildir, file, or command line; forward: the address
    Identity as;          // who writes / runs
    uint64_t quota = 0;   // virtual mailboxes
    std::string extension;
    std::string via;      // "alias team", ".forward of bob" (logs)
    bool operator==(const Destination& o) const { return kind == o.kind && path == o.path && as.uid == o.as.uid; }
};

struct Resolution {
    std::vector<Destination> destinations;
    std::optional<DeliveryResult> failure;  // the recipient as a whole fails
};

class Resolver {
public:
    Resolver(const tables::RecipientCheck& tables, const Settings& settings) : tables_(tables), settings_(settings) {}
    Resolution resolve(std::string_view address) const;

private:
    struct Origin {
        std::string kind;   // "" (the recipient itself), "alias", "forward", "include"
        bool trusted = false;
        Identity run_as;
        std::string where;  // for messages
    };
    struct State;

    void expand(State& st, const std::string& address, const Origin& origin, int depth, bool no_expand) const;
    void expand_local(State& st, const std::string& local, const std::string& display, const Origin& origin, int depth,
                      bool no_expand) const;
    void expand_virtual(State& st, const std::string& local, const std::string& domain, const Origin& origin,
                        int depth) const;
    void expand_targets(State& st, const std::vector<tables::AliasTarget>& targets, const Origin& origin,
                        const std::string& address, int depth) const;
    void expand_include(State& st, const std::string& path, const Origin& origin, const std::string& address,
                        int depth) const;
    Origin alias_origin(size_t table_index, const std::string& name) const;
    Result<Identity> privileged_or_default(const Identity& who) const;
    void mailbox_for(State& st, const Identity& user, const std::string& address, const std::string& extension) const;

    const tables::RecipientCheck& tables_;
    const Settings& settings_;
};

}  // namespace tern::local
