// SMTP replies as a client reads them (RFC 5321 4.2): lines gathered into
// one Reply until the last "NNN " line, the enhanced status code (RFC 3463)
// taken from the first line when the server sends one, and the EHLO
// keywords a client cares about.
//
// A line that is not a reply line, or a continuation with another code, is
// a protocol error: the caller drops the session (as Postfix does, it never
// guesses).  Replies are bounded (line count) so a hostile server cannot
// make the client buffer without end.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::smtp {

struct Reply {
    int code = 0;
    std::string enhanced;            // "2.1.5", or "" when the server sent none
    std::vector<std::string> lines;  // texts after "NNN-" / "NNN ", enhanced code kept
    // "250 2.1.5 Ok": code and the lines joined with spaces (for logs and DSNs).
    std::string text() const;
    // The enhanced code, or one made from the basic code ("4.0.0", "5.0.0").
    std::string dsn() const;
    bool positive() const { return code >= 200 && code < 400; }
    bool transient() const { return code >= 400 && code < 500; }
};

class ReplyReader {
public:
    // Feeds one line (without CRLF).  Returns a finished reply, nothing while
    // a multi-line reply goes on, or an error.
    Result<std::optional<Reply>> feed(std::string_view line);

private:
    Reply partial_;
    bool in_reply_ = false;
};

struct Extensions {
    bool esmtp = false;  // EHLO was accepted
    bool pipelining = false, eightbitmime = false, smtputf8 = false, dsn = false, starttls = false,
         chunking = false, enhancedstatuscodes = false;
    bool size = false;
    uint64_t size_limit = 0;  // 0 = none announced
    std::vector<std::string> auth;  // SASL mechanisms, upper case
};

// The keywords of a 250 reply to EHLO (its first line is the greeting).
Extensions parse_ehlo(const Reply& reply);

}  // namespace tern::smtp
