// Drop: one message on its way into the maildrop, safe against signals.
//
// While a Drop is open its temporary file name is registered with the
// signal handlers sendmail installs (SIGINT, SIGTERM, SIGHUP, SIGQUIT,
// SIGPIPE, SIGXFSZ), which unlink it and exit with EX_TEMPFAIL: an
// interrupted sendmail never leaves half a message, and qmgr would not
// pick one up anyway (lib/maildrop's trailer).  The size limit is
// message_size_limit, as smtpd enforces it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "lib/config/config.hpp"
#include "lib/core/result.hpp"
#include "lib/maildrop/maildrop.hpp"

namespace tern::sendmail {

void install_signal_handlers();

class Drop {
public:
    static Result<Drop> begin(const config::Config& config, const maildrop::Envelope& envelope);
    ~Drop();
    Drop(Drop&&) noexcept;
    Drop& operator=(Drop&&) = delete;

    // Fails with too_large() set when the message passes the size limit.
    Status write(std::string_view bytes);
    bool too_large() const { return too_large_; }
    Result<std::string> commit();  // the maildrop file name

private:
    Drop() = default;
    maildrop::Writer writer_;
    uint64_t limit_ = 0;
    uint64_t size_ = 0;
    bool too_large_ = false;
    bool registered_ = false;
};

// The submitting user's address: login name (from the real uid) @ myorigin.
Result<std::string> user_address(const config::Config& config, std::string* fullname);

// Qualifies a bare name with myorigin ("" stays the null sender).
std::string qualify(const std::string& address, const config::Config& config);

}  // namespace tern::sendmail
