// Unit tests for lib/tls: contexts from PEM files (good, missing, mismatched)
// and the session description, through a real in-memory handshake.
#include <catch2/catch.hpp>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "lib/tls/context.hpp"

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/tern-tls-test-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

EVP_PKEY* make_key() { return EVP_EC_gen("P-256"); }

void write_cert(const std::string& cert_path, const std::string& key_path, EVP_PKEY* key) {
    X509* x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, key, EVP_sha256());
    FILE* f = std::fopen(cert_path.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen(key_path.c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
}

}  // namespace

TEST_CASE("tls: server context and handshake description", "[tls]") {
    TempDir dir;
    EVP_PKEY* key = make_key();
    REQUIRE(key);
    std::string cert = dir.path + "/cert.pem", keyfile = dir.path + "/key.pem";
    write_cert(cert, keyfile, key);
    EVP_PKEY_free(key);

    auto server = tern::tls::server_context(cert, keyfile);
    REQUIRE(server);
    auto client = tern::tls::client_context();
    REQUIRE(client);

    SSL* s = SSL_new(server->get());
    SSL* c = SSL_new(client->get());
    BIO *sb, *cb;
    REQUIRE(BIO_new_bio_pair(&sb, 0, &cb, 0) == 1);
    SSL_set_bio(s, sb, sb);
    SSL_set_bio(c, cb, cb);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    bool done_s = false, done_c = false;
    for (int i = 0; i < 50 && !(done_s && done_c); ++i) {
        if (!done_c) done_c = SSL_do_handshake(c) == 1;
        if (!done_s) done_s = SSL_do_handshake(s) == 1;
    }
    REQUIRE(done_s);
    REQUIRE(done_c);
    std::string d = tern::tls::describe(s);
    CHECK(d.rfind("TLSv1.3 with cipher TLS_", 0) == 0);
    CHECK(d.find(" bits)") != std::string::npos);
    CHECK(tern::tls::protocol(s) == "TLSv1.3");
    CHECK(tern::tls::describe(nullptr).empty());
    SSL_free(s);
    SSL_free(c);
}

TEST_CASE("tls: TLS 1.1 clients are refused", "[tls]") {
    TempDir dir;
    EVP_PKEY* key = make_key();
    std::string cert = dir.path + "/cert.pem", keyfile = dir.path + "/key.pem";
    write_cert(cert, keyfile, key);
    EVP_PKEY_free(key);
    auto server = tern::tls::server_context(cert, keyfile);
    REQUIRE(server);
    SSL_CTX* old = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(old, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(old, TLS1_1_VERSION);
    SSL_CTX_set_security_level(old, 0);
    SSL* s = SSL_new(server->get());
    SSL* c = SSL_new(old);
    BIO *sb, *cb;
    REQUIRE(BIO_new_bio_pair(&sb, 0, &cb, 0) == 1);
    SSL_set_bio(s, sb, sb);
    SSL_set_bio(c, cb, cb);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    bool ok_s = false;
    for (int i = 0; i < 20; ++i) {
        SSL_do_handshake(c);
        if (SSL_do_handshake(s) == 1) ok_s = true;
    }
    CHECK_FALSE(ok_s);
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(old);
    (void)tern::tls::openssl_errors();
}

TEST_CASE("tls: bad files are clear errors", "[tls]") {
    TempDir dir;
    auto missing = tern::tls::server_context(dir.path + "/nope.pem", dir.path + "/nope.key");
    REQUIRE_FALSE(missing);
    CHECK(missing.message().find("cannot load certificate") != std::string::npos);

    EVP_PKEY* a = make_key();
    EVP_PKEY* b = make_key();
    write_cert(dir.path + "/a.pem", dir.path + "/a.key", a);
    write_cert(dir.path + "/b.pem", dir.path + "/b.key", b);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    auto mismatch = tern::tls::server_context(dir.path + "/a.pem", dir.path + "/b.key");
    REQUIRE_FALSE(mismatch);
    CHECK(!mismatch.message().empty());
}
