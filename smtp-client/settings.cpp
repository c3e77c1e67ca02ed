// smtp-client settings (see settings.hpp).
#include "smtp-client/settings.hpp"

#include <algorithm>

namespace tern::smtpc {

namespace {
std::chrono::milliseconds ms(std::chrono::seconds s) { return std::chrono::duration_cast<std::chrono::milliseconds>(s); }
}  // namespace

Result<TlsLevel> parse_tls_level(std::string_view word) {
    if (word == "none") return TlsLevel::None;
    if (word == "may") return TlsLevel::May;
    if (word == "encrypt") return TlsLevel::Encrypt;
    if (word == "verify" || word == "secure") return TlsLevel::Verify;
    if (word == "dane") return TlsLevel::Dane;
    return make_error("unknown TLS security level '" + std::string(word) + "' (none, may, encrypt, verify, dane)");
}

std::string_view tls_level_name(TlsLevel level) {
    switch (level) {
    case TlsLevel::None: return "none";
    case TlsLevel::May: return "may";
    case TlsLevel::Encrypt: return "encrypt";
    case TlsLevel::Verify: return "verify";
    case TlsLevel::Dane: return "dane";
    }
    return "?";
}

Result<Settings> Settings::from(const config::Config& c) {
    Settings s;
    s.helo_name = c.get("smtp_helo_name");
    long long port = c.get_int("smtp_tcp_port");
    if (port < 1 || port > 65535) return make_error("smtp_tcp_port: not a port number: " + std::to_string(port));
    s.port = static_cast<int>(port);
    long long sts_port = c.get_int("smtp_mta_sts_port");
    if (sts_port < 1 || sts_port > 65535) return make_error("smtp_mta_sts_port: not a port number");
    s.mta_sts_port = static_cast<int>(sts_port);
    s.sts_cache_dir = c.get("data_directory") + "/mta-sts";
    std::string pref = c.get("smtp_address_preference");
    if (pref == "any") s.preference = AddressPreference::Any;
    else if (pref == "ipv4") s.preference = AddressPreference::IPv4;
    else if (pref == "ipv6") s.preference = AddressPreference::IPv6;
    else return make_error("smtp_address_preference: expected any, ipv4 or ipv6, not '" + pref + "'");
    s.connect_timeout = ms(c.get_duration("smtp_connect_timeout"));
    s.reply_timeout = ms(c.get_duration("smtp_reply_timeout"));
    s.data_done_timeout = ms(c.get_duration("smtp_data_done_timeout"));
    s.cache_time = ms(c.get_duration("smtp_connection_cache_time_limit"));
    s.reuse_time = ms(c.get_duration("smtp_connection_reuse_time_limit"));
    s.dead_time = c.get_duration("smtp_dead_destination_time");
    s.destination_limit = static_cast<int>(std::max<long long>(1, c.get_int("smtp_destination_concurrency_limit")));
    s.initial_concurrency =
        static_cast<int>(std::clamp<long long>(c.get_int("smtp_initial_destination_concurrency"), 1, s.destination_limit));
    auto level = parse_tls_level(c.get("smtp_tls_security_level"));
    if (!level) return make_error("smtp_tls_security_level: " + level.message());
    s.tls_level = *level;
    s.tls_cafile = c.get("smtp_tls_CAfile");
    auto ctx = tls::client_context();
    if (!ctx) return make_error("TLS client context: " + ctx.message());
    s.tls = std::move(*ctx);
    // RFC 7672 via OpenSSL's DANE support; enabled per connection.
    if (SSL_CTX_dane_enable(s.tls.get()) <= 0) return make_error("DANE support: " + tls::openssl_errors());
    if (!s.tls_cafile.empty() && SSL_CTX_load_verify_locations(s.tls.get(), s.tls_cafile.c_str(), nullptr) != 1)
        return make_error("smtp_tls_CAfile " + s.tls_cafile + ": " + tls::openssl_errors());
    return s;
}

}  // namespace tern::smtpc
