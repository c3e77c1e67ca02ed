// smtp-client's settings, read once from tern.conf at start.
#pragma once

#include <chrono>
#include <string>

#include "lib/config/config.hpp"
#include "lib/core/result.hpp"
#include "lib/tls/context.hpp"

namespace tern::smtpc {

enum class AddressPreference { Any, IPv4, IPv6 };
enum class TlsLevel { None, May, Encrypt, Verify, Dane };

struct Settings {
    std::string helo_name;
    int port = 25;
    int mta_sts_port = 443;
    std::string sts_cache_dir;  // $data_directory/mta-sts: policies kept across restarts
    AddressPreference preference = AddressPreference::Any;
    std::chrono::milliseconds connect_timeout{30000};
    std::chrono::milliseconds reply_timeout{300000};
    std::chrono::milliseconds data_done_timeout{600000};
    std::chrono::milliseconds cache_time{2000};
    std::chrono::milliseconds reuse_time{300000};  // a session older than this is not reused
    std::chrono::seconds dead_time{60};
    int destination_limit = 20;
    int initial_concurrency = 5;  // slow start (slow_start.hpp)
    TlsLevel tls_level = TlsLevel::May;
    std::string tls_cafile;
    tls::Context tls;  // client context; trust: system store + tls_cafile

    static Result<Settings> from(const config::Config& config);
};

Result<TlsLevel> parse_tls_level(std::string_view word);
std::string_view tls_level_name(TlsLevel level);

}  // namespace tern::smtpc
