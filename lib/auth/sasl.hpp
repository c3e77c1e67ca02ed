// Server side of the SASL mechanisms tern offers: PLAIN (RFC 4616) and
// LOGIN (draft-murchison-sasl-login), shared by smtpd (RFC 4954 AUTH),
// imapd (AUTHENTICATE, SASL-IR) and pop3d (AUTH, RFC 5034).
//
// Protocol-neutral: the caller carries the base64 text between the wire
// and this class; it answers what to send next.
//
//   auth::SaslExchange sasl;
//   auto step = sasl.start("PLAIN", initial_response);  // nullopt: none given
//   while (step.state == SaslState::challenge) {
//       send(prefix + step.challenge);  // "334 " / "+ " and the base64 text
//       step = sasl.next(read_line());
//   }
//   if (step.state == SaslState::done) check(sasl.credentials());
//
// An initial response of "=" is an empty one (RFC 4954 4, RFC 9051 6.2.2);
// a client line of "*" cancels (→ SaslState::cancelled, SMTP 501 5.0.0).
// Malformed base64, a PLAIN message without two NULs, NULs in a LOGIN
// name, or a field above kMaxField bytes → SaslState::failed with a reason
// the server can send (SMTP 501 5.5.2).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "lib/core/result.hpp"

namespace tern::auth {

inline constexpr size_t kMaxField = 1024;  // per authzid / authcid / password

struct Credentials {
    std::string authzid;   // empty when the client asks for no other identity
    std::string authcid;   // the login name
    std::string password;
};

// Base64 (RFC 4648, with padding; no line breaks, no white space accepted).
Result<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);

// PLAIN message: [authzid] NUL authcid NUL passwd (already base64-decoded).
Result<Credentials> decode_plain(std::string_view message);

enum class SaslState { challenge, done, failed, cancelled };

struct SaslStep {
    SaslState state = SaslState::failed;
    std::string challenge;  // base64 text to send (may be empty) when state == challenge
    std::string error;      // why, when state == failed
};

class SaslExchange {
public:
    // Mechanisms this class implements, upper-case, space-separated: "PLAIN LOGIN".
    static const char* mechanisms();
    static bool supported(std::string_view mechanism);  // case-insensitive

    SaslStep start(std::string_view mechanism, std::optional<std::string_view> initial_response);
    SaslStep next(std::string_view client_line);  // one line from the client, CRLF removed

    const std::string& mechanism() const { return mechanism_; }  // upper-case
    const Credentials& credentials() const { return credentials_; }

private:
    enum class Phase { none, plain_wait, login_user, login_password, finished };
    SaslStep finish_plain(std::string_view base64);
    SaslStep fail(std::string why);
    std::string mechanism_;
    Credentials credentials_;
    Phase phase_ = Phase::none;
};

}  // namespace tern::auth
