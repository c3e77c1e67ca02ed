// Tests for lib/auth/password: new hashes per scheme verify, wrong
// passwords and mismatched schemes do not, {PLAIN} only when allowed.
#include <catch2/catch.hpp>

#include <string>

#include "lib/auth/password.hpp"

using namespace tern::auth;

TEST_CASE("hash and verify each scheme", "[auth][password]") {
    for (Scheme s : {Scheme::yescrypt, Scheme::sha512_crypt, Scheme::blf_crypt}) {
        auto h = hash_password("correct horse", s);
        REQUIRE(h);
        CHECK(h->rfind(std::string("{") + scheme_name(s) + "}", 0) == 0);
        CHECK(verify_password(*h, "correct horse", false).verdict == Verify::match);
        CHECK(verify_password(*h, "correct hors", false).verdict == Verify::mismatch);
        CHECK(verify_password(*h, "", false).verdict == Verify::mismatch);
        auto again = hash_password("correct horse", s);
        CHECK(*again != *h);  // fresh salt
    }
    auto y = hash_password("x");
    REQUIRE(y);
    CHECK(y->rfind("{YESCRYPT}$y$", 0) == 0);
}

TEST_CASE("known hashes and hostile stored values", "[auth][password]") {
    // The dev users file's demo hash (password "demo").
    std::string demo = "{SHA512-CRYPT}$6$3brT4zVUneoOKHFN$xQfKfRFfBKSh1Su/8A0QftHF2l3/bbEbTnLDVplTAH/1JVA6LedpszczOVI9IrK2yPOWxNk.CfzbCgU2m0Jdj0";
    CHECK(verify_password(demo, "demo", false).verdict == Verify::match);
    CHECK(verify_password(demo.substr(14), "demo", false).verdict == Verify::match);  // bare crypt
    CHECK(verify_password("{CRYPT}" + demo.substr(14), "demo", false).verdict == Verify::match);
    CHECK(verify_password("{YESCRYPT}" + demo.substr(14), "demo", false).verdict == Verify::unusable);
    CHECK(verify_password("{PLAIN}demo", "demo", false).verdict == Verify::unusable);
    CHECK(verify_password("{PLAIN}demo", "demo", true).verdict == Verify::match);
    CHECK(verify_password("{PLAIN}demo", "dem", true).verdict == Verify::mismatch);
    CHECK(verify_password("{MD5}abc", "demo", true).verdict == Verify::unusable);
    CHECK(verify_password("", "demo", true).verdict == Verify::unusable);
    CHECK(verify_password("{SHA512-CRYPT", "demo", true).verdict == Verify::unusable);
    CHECK(verify_password("{SHA512-CRYPT}$6$", "demo", true).verdict != Verify::match);
    CHECK(verify_crypt("!$6$abc", "demo").verdict == Verify::unusable);
    CHECK(verify_crypt("*", "demo").verdict == Verify::unusable);
    CHECK(verify_password(demo, std::string("demo\0x", 6), false).verdict == Verify::mismatch);
    CHECK(parse_scheme("sha512-crypt"));
    CHECK_FALSE(parse_scheme("md5"));
}
