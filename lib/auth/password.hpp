// Password hashes in the users file: "{SCHEME}hash" through libxcrypt.
//
//   {YESCRYPT}$y$...      the default for new passwords (mailctl user add)
//   {SHA512-CRYPT}$6$...  accepted
//   {BLF-CRYPT}$2y$...    accepted ($2b$, $2a$ too)
//   {CRYPT}$...           any crypt(3) hash libxcrypt knows, by its prefix
//   $y$... / $6$ ...      a bare crypt hash is read as {CRYPT}
//   {PLAIN}secret         only when the caller allows it (auth_allow_plain)
//
// Verification is slow on purpose (yescrypt: tens of ms) and thread-safe
// (crypt_r with a per-call buffer): the auth daemon runs it on its thread
// pool, mailctl directly.  Comparisons are constant-time.
#pragma once

#include <string>
#include <string_view>

#include "lib/core/result.hpp"

namespace tern::auth {

enum class Scheme { yescrypt, sha512_crypt, blf_crypt };

// "YESCRYPT", "SHA512-CRYPT", "BLF-CRYPT" (case-insensitive) → Scheme.
Result<Scheme> parse_scheme(std::string_view name);
const char* scheme_name(Scheme scheme);

// A new "{SCHEME}hash" with a fresh random salt.
Result<std::string> hash_password(std::string_view password, Scheme scheme = Scheme::yescrypt);

enum class Verify { match, mismatch, unusable };  // unusable: unknown scheme, locked ("!", "*"), malformed

struct VerifyResult {
    Verify verdict = Verify::unusable;
    std::string why;  // for unusable
};

VerifyResult verify_password(std::string_view stored, std::string_view password, bool allow_plain);

// The same verify for a bare crypt(3) hash from the system password database.
VerifyResult verify_crypt(std::string_view hash, std::string_view password);

}  // namespace tern::auth
