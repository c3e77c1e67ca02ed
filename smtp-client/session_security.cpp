// The SMTP client session's security steps: STARTTLS with the TLS level's
// checks (opportunistic, encrypt, verify, DANE) and the Postfix-style TLS
// log line, and SMTP AUTH (RFC 4954; PLAIN, else LOGIN) over TLS only.
// Part of Session (see session.hpp); the conversation is in session.cpp.
#include <event2/bufferevent_ssl.h>
#include <openssl/evp.h>
#include <openssl/x509_vfy.h>

#include <algorithm>

#include "lib/log/log.hpp"
#include "lib/tls/context.hpp"
#include "smtp-client/session.hpp"

namespace tern::smtpc {

void Session::start_tls() {
    SSL* ssl = SSL_new(settings_.tls.get());
    if (!ssl) {
        fail("cannot start TLS: " + tls::openssl_errors());
        return;
    }
    SSL_set_tlsext_host_name(ssl, target_.host.c_str());
    if (level_ == TlsLevel::Dane) {
        // RFC 7672: the TLSA records are the trust anchors; DANE-EE(3)
        // matches the key itself, with no name check (section 3.1.1).
        SSL_dane_enable(ssl, target_.host.c_str());
        SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
        for (const auto& t : target_.tlsa)
            SSL_dane_tlsa_add(ssl, t.usage, t.selector, t.matching, reinterpret_cast<const unsigned char*>(t.data.data()),
                              t.data.size());
    } else {
        // The name is checked with the chain; the verdict is read after the
        // handshake, so that opportunistic TLS still encrypts to anyone.
        SSL_set1_host(ssl, target_.host.c_str());
    }
    SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
    bufferevent* tb = bufferevent_openssl_filter_new(base_, bev_.get(), ssl, BUFFEREVENT_SSL_CONNECTING,
                                                     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!tb) {
        SSL_free(ssl);
        fail("cannot start TLS");
        return;
    }
    (void)bev_.release();  // now owned by the filter
    bev_.reset(tb);
    bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
    bufferevent_setcb(
        tb, [](bufferevent*, void* self) { static_cast<Session*>(self)->on_read(); },
        [](bufferevent*, void* self) { static_cast<Session*>(self)->on_write(); },
        [](bufferevent*, short what, void* self) { static_cast<Session*>(self)->on_event(what); }, this);
    bufferevent_enable(tb, EV_READ | EV_WRITE);
    handshaking_ = true;
    phase_ = "performing the TLS handshake";
    arm_timer(settings_.reply_timeout);
}

void Session::tls_established() {
    timer_.del();
    tls_ = true;
    SSL* ssl = tls::ssl_of(bev_.get());
    X509* cert = ssl ? SSL_get0_peer_certificate(ssl) : nullptr;
    long verify = ssl ? SSL_get_verify_result(ssl) : X509_V_ERR_UNSPECIFIED;
    // Postfix's words: Verified = chain and name match, Trusted = chain only,
    // Untrusted = a certificate we cannot vouch for, Anonymous = none.
    const char* word = !cert ? "Anonymous"
                       : verify == X509_V_OK ? "Verified"
                       : verify == X509_V_ERR_HOSTNAME_MISMATCH ? "Trusted"
                                                                 : "Untrusted";
    log::info("%s TLS connection established to %s: %s", word, target_.label().c_str(), tls::describe(ssl).c_str());
    if (level_ == TlsLevel::Dane && verify != X509_V_OK) {
        // A TLSA mismatch defers; it never falls back to plaintext.
        open_failed(delivery::Outcome::Deferred, "4.7.5",
                    "Server certificate not trusted: no TLSA record matches (" +
                        std::string(X509_verify_cert_error_string(verify)) + ") for " + target_.label());
        return;
    }
    if (level_ == TlsLevel::Verify && verify != X509_V_OK) {
        open_failed(delivery::Outcome::Deferred, "4.7.5",
                    "Server certificate not verified (" + std::string(X509_verify_cert_error_string(verify)) + ") for " +
                        target_.label());
        return;
    }
    reader_ = smtp::ReplyReader();
    send_ehlo();
    flush();
}

void Session::authenticate() {
    if (!auth_) {
        opened();
        return;
    }
    if (!tls_) {
        open_failed(delivery::Outcome::Deferred, "4.7.4",
                    "TLS is required for SMTP AUTH, but was not established with " + target_.label());
        return;
    }
    auto has = [&](const char* m) { return std::find(ext_.auth.begin(), ext_.auth.end(), m) != ext_.auth.end(); };
    auto b64 = [](const std::string& in) {
        std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
        int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
        out.resize(static_cast<size_t>(n));
        return out;
    };
    auto done = [this](const smtp::Reply& r) {
        if (r.code == 235) {
            opened();
            return;
        }
        // Postfix defers on a failed login and tries the next server.
        open_failed(delivery::Outcome::Deferred, r.code >= 500 ? "4.7.8" : r.dsn(),
                    "SASL authentication failed; server " + target_.host + "[" + target_.ip + "] said: " + r.text());
    };
    phase_ = "performing the SASL authentication";
    const auto& [user, password] = *auth_;
    if (has("PLAIN")) {
        // RFC 4616: authzid NUL authcid NUL password.
        command("AUTH PLAIN " + b64(std::string(1, '\0') + user + std::string(1, '\0') + password), done);
    } else if (has("LOGIN")) {
        std::string u = b64(user), p = b64(password);
        command("AUTH LOGIN", [this, u, p, done](const smtp::Reply& r) {
            if (r.code != 334) return done(r);
            command(u, [this, p, done](const smtp::Reply& r2) {
                if (r2.code != 334) return done(r2);
                command(p, done);
            });
        });
    } else {
        std::string offered;
        for (const auto& m : ext_.auth) offered += (offered.empty() ? "" : " ") + m;
        open_failed(delivery::Outcome::Deferred, "4.7.0",
                    "SASL authentication failed: no mechanism in common with " + target_.label() + " (it offers: " +
                        (offered.empty() ? "none" : offered) + ")");
        return;
    }
    flush();
}

}  // namespace tern::smtpc
