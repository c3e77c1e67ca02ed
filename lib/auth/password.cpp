// Password hashing and verification with libxcrypt: see password.hpp.
#include "lib/auth/password.hpp"

#include "lib/auth/ascii.hpp"

#include <crypt.h>
#include <openssl/crypto.h>

#include <cctype>
#include <cstring>
#include <memory>

namespace tern::auth {
namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool same(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

Result<Scheme> parse_scheme(std::string_view name) {
    if (ascii_iequals(name, "YESCRYPT")) return Scheme::yescrypt;
    if (ascii_iequals(name, "SHA512-CRYPT")) return Scheme::sha512_crypt;
    if (ascii_iequals(name, "BLF-CRYPT")) return Scheme::blf_crypt;
    return make_error("unknown password scheme '" + std::string(name) + "' (YESCRYPT, SHA512-CRYPT, BLF-CRYPT)");
}

const char* scheme_name(Scheme scheme) {
    switch (scheme) {
    case Scheme::yescrypt: return "YESCRYPT";
    case Scheme::sha512_crypt: return "SHA512-CRYPT";
    case Scheme::blf_crypt: return "BLF-CRYPT";
    }
    return "YESCRYPT";
}

Result<std::string> hash_password(std::string_view password, Scheme scheme) {
    if (password.find('\0') != std::string_view::npos) return make_error("password contains a NUL byte");
    const char* prefix = scheme == Scheme::yescrypt ? "$y$" : scheme == Scheme::sha512_crypt ? "$6$" : "$2b$";
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    // count 0: libxcrypt's default cost; rbytes null: it reads the OS random source.
    if (crypt_gensalt_rn(prefix, 0, nullptr, 0, salt, sizeof salt) == nullptr)
        return make_error(std::string("crypt_gensalt: ") + std::strerror(errno));
    auto data = std::make_unique<crypt_data>();
    std::string pw(password);
    const char* out = crypt_r(pw.c_str(), salt, data.get());
    OPENSSL_cleanse(pw.data(), pw.size());
    if (out == nullptr || out[0] == '*') return make_error("crypt failed for scheme " + std::string(scheme_name(scheme)));
    std::string result = "{" + std::string(scheme_name(scheme)) + "}" + out;
    OPENSSL_cleanse(data.get(), sizeof(crypt_data));
    return result;
}

VerifyResult verify_crypt(std::string_view hash, std::string_view password) {
    if (hash.empty() || hash[0] == '!' || hash[0] == '*') return {Verify::unusable, "account locked or without password"};
    if (password.find('\0') != std::string_view::npos) return {Verify::mismatch, ""};
    auto data = std::make_unique<crypt_data>();
    std::string pw(password), setting(hash);
    const char* out = crypt_r(pw.c_str(), setting.c_str(), data.get());
    OPENSSL_cleanse(pw.data(), pw.size());
    VerifyResult r;
    if (out == nullptr || out[0] == '*')
        r = {Verify::unusable, "hash not understood by libxcrypt"};
    else
        r = {same(out, hash) ? Verify::match : Verify::mismatch, ""};
    OPENSSL_cleanse(data.get(), sizeof(crypt_data));
    return r;
}

VerifyResult verify_password(std::string_view stored, std::string_view password, bool allow_plain) {
    if (stored.empty()) return {Verify::unusable, "no password set"};
    if (stored.front() != '{') {
        if (stored.front() == '$') return verify_crypt(stored, password);
        return {Verify::unusable, "password field has no {SCHEME} prefix"};
    }
    size_t close = stored.find('}');
    if (close == std::string_view::npos) return {Verify::unusable, "unterminated {SCHEME}"};
    std::string_view scheme = stored.substr(1, close - 1);
    std::string_view hash = stored.substr(close + 1);
    if (ascii_iequals(scheme, "PLAIN")) {
        if (!allow_plain) return {Verify::unusable, "{PLAIN} passwords are not allowed (auth_allow_plain)"};
        if (hash.empty()) return {Verify::unusable, "empty {PLAIN} password"};
        return {same(hash, password) ? Verify::match : Verify::mismatch, ""};
    }
    // The scheme must agree with the hash's own prefix, so a typo never
    // turns into a weaker check.
    bool fits = ascii_iequals(scheme, "CRYPT") ? starts_with(hash, "$")
              : ascii_iequals(scheme, "YESCRYPT") ? starts_with(hash, "$y$")
              : ascii_iequals(scheme, "SHA512-CRYPT") ? starts_with(hash, "$6$")
              : ascii_iequals(scheme, "BLF-CRYPT") ? (starts_with(hash, "$2y$") || starts_with(hash, "$2b$") ||
                                               starts_with(hash, "$2a$"))
                                            : false;
    if (!fits) return {Verify::unusable, "unknown scheme or hash not matching {" + std::string(scheme) + "}"};
    return verify_crypt(hash, password);
}

}  // namespace tern::auth
