// RecipientCheck: does a recipient exist here?  smtpd asks it at RCPT time
// (550 5.1.1 for an unknown user); local-delivery uses the same tables.
//
// A domain is Local (mydestination, or a domain that transport_maps sends
// to `local`: mailboxes of system users, aliases(5)), Virtual
// (virtual_mailbox_domains: users table, plus alias entries written as full
// addresses) or Remote (everything else; not this module's business).
// Unavailable: the transport table could not be read, so we cannot tell.
//   local:   postmaster and root always exist (RFC 5321 4.5.1); otherwise an
//            alias or a system user (getpwnam), tried with the full local
//            part and then without the recipient_delimiter extension.
//   virtual: a users-table entry or an alias for user@domain, again with and
//            then without the extension; postmaster@domain always exists and
//            is delivered to the local postmaster when not in the tables.
// Calls are cheap: tables are compiled LMDB files opened once (no locks, one
// read transaction per lookup).  reload_if_changed() costs a few stat()s and
// picks up edited tables; a table that turned stale and cannot be rebuilt is
// refused — lookups then answer Unavailable and exists() says true so that
// the message is accepted and held for local-delivery to defer, never a
// permanent 550 from a table we cannot trust.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/config/config.hpp"
#include "lib/core/result.hpp"
#include "lib/tables/aliases.hpp"
#include "lib/tables/domain_map.hpp"
#include "lib/tables/domains.hpp"
#include "lib/tables/users.hpp"

namespace tern::tables {

class RecipientCheck {
public:
    // Keys: mydestination, virtual_mailbox_domains, alias_maps,
    // virtual_mailbox_maps (users file), recipient_delimiter, transport_maps.
    static Result<RecipientCheck> open(const config::Config& config);

    enum class Domain { Remote, Local, Virtual, Unavailable };
    Domain classify_domain(std::string_view domain) const;

    enum class Answer { Yes, No, Unavailable };
    Answer check(std::string_view address) const;
    // check() != No.  Remote addresses answer true (relay policy is smtpd's).
    bool exists(std::string_view address) const;

    // Re-opens tables whose source changed (rebuilding when possible).  A
    // failure is returned and logged once; the failed table answers Unavailable.
    Status reload_if_changed();

    // For local-delivery's resolver.
    const std::vector<AliasTable>& aliases() const { return aliases_; }
    const std::optional<UsersTable>& users() const { return users_; }
    const std::string& delimiters() const { return delimiters_; }
    bool tables_usable() const { return tables_ok_; }

    // Alias targets for key (looked up in each alias_maps file in order).
    // The index of the table that answered is stored in *table_index.
    Result<std::optional<std::vector<AliasTarget>>> lookup_alias(std::string_view key,
                                                                 size_t* table_index = nullptr) const;

private:
    RecipientCheck() = default;
    bool tables_unchanged() const;
    Answer check_local(const std::string& local) const;
    Answer check_virtual(const std::string& local, const std::string& domain) const;

    DomainList local_domains_;
    DomainList virtual_domains_;
    std::vector<std::string> alias_paths_;
    std::vector<AliasTable> aliases_;
    std::string users_path_;
    std::optional<UsersTable> users_;
    std::string transport_path_;
    std::optional<DomainMap> transports_;  // for its `local` entries
    std::string delimiters_;
    bool tables_ok_ = true;
};

}  // namespace tern::tables
