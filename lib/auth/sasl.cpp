// SASL PLAIN and LOGIN, server side: see sasl.hpp.
#include "lib/auth/sasl.hpp"

#include "lib/auth/ascii.hpp"

#include <array>
#include <cctype>
#include <cstdint>

namespace tern::auth {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> make_reverse() {
    std::array<int8_t, 256> r{};
    for (auto& v : r) v = -1;
    for (int i = 0; i < 64; ++i) r[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
    return r;
}
constexpr auto kReverse = make_reverse();

// "Username:" and "Password:", the prompts every LOGIN client expects.
constexpr char kUserPrompt[] = "VXNlcm5hbWU6";
constexpr char kPasswordPrompt[] = "UGFzc3dvcmQ6";

}  // namespace

Result<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return make_error("base64 length is not a multiple of 4");
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (size_t i = 0; i < text.size(); i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; ++k) {
            unsigned char c = static_cast<unsigned char>(text[i + k]);
            if (c == '=') {
                // Padding only in the last group, only at its end.
                if (i + 4 != text.size() || k < 2) return make_error("misplaced base64 padding");
                ++pad;
                v[k] = 0;
                continue;
            }
            if (pad > 0 || kReverse[c] < 0) return make_error("invalid base64 character");
            v[k] = kReverse[c];
        }
        uint32_t n = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | uint32_t(v[3]);
        out.push_back(static_cast<char>((n >> 16) & 0xff));
        if (pad < 2) out.push_back(static_cast<char>((n >> 8) & 0xff));
        if (pad < 1) out.push_back(static_cast<char>(n & 0xff));
    }
    return out;
}

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                     uint32_t(uint8_t(bytes[i + 2]));
        out += kAlphabet[(n >> 18) & 63];
        out += kAlphabet[(n >> 12) & 63];
        out += kAlphabet[(n >> 6) & 63];
        out += kAlphabet[n & 63];
    }
    size_t rest = bytes.size() - i;
    if (rest > 0) {
        uint32_t n = uint32_t(uint8_t(bytes[i])) << 16;
        if (rest == 2) n |= uint32_t(uint8_t(bytes[i + 1])) << 8;
        out += kAlphabet[(n >> 18) & 63];
        out += kAlphabet[(n >> 12) & 63];
        out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

// RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd;
// authcid and passwd must not be empty and no field holds a NUL.
Result<Credentials> decode_plain(std::string_view message) {
    size_t first = message.find('\0');
    if (first == std::string_view::npos) return make_error("PLAIN message without NUL separators");
    size_t second = message.find('\0', first + 1);
    if (second == std::string_view::npos) return make_error("PLAIN message without a password");
    if (message.find('\0', second + 1) != std::string_view::npos)
        return make_error("PLAIN message with more than three fields");
    Credentials c;
    c.authzid = std::string(message.substr(0, first));
    c.authcid = std::string(message.substr(first + 1, second - first - 1));
    c.password = std::string(message.substr(second + 1));
    if (c.authcid.empty()) return make_error("PLAIN message with an empty user name");
    if (c.password.empty()) return make_error("PLAIN message with an empty password");
    if (c.authzid.size() > kMaxField || c.authcid.size() > kMaxField || c.password.size() > kMaxField)
        return make_error("PLAIN field too long");
    return c;
}

const char* SaslExchange::mechanisms() { return "PLAIN LOGIN"; }

bool SaslExchange::supported(std::string_view mechanism) {
    return ascii_iequals(mechanism, "PLAIN") || ascii_iequals(mechanism, "LOGIN");
}

SaslStep SaslExchange::fail(std::string why) {
    phase_ = Phase::finished;
    credentials_ = {};
    return SaslStep{SaslState::failed, "", std::move(why)};
}

SaslStep SaslExchange::finish_plain(std::string_view base64) {
    auto bytes = base64_decode(base64);
    if (!bytes) return fail(bytes.message());
    auto creds = decode_plain(*bytes);
    if (!creds) return fail(creds.message());
    credentials_ = std::move(*creds);
    phase_ = Phase::finished;
    return SaslStep{SaslState::done, "", ""};
}

SaslStep SaslExchange::start(std::string_view mechanism, std::optional<std::string_view> initial_response) {
    credentials_ = {};
    if (ascii_iequals(mechanism, "PLAIN")) {
        mechanism_ = "PLAIN";
        if (!initial_response) {
            phase_ = Phase::plain_wait;
            return SaslStep{SaslState::challenge, "", ""};
        }
        if (*initial_response == "=") return fail("PLAIN message is empty");
        return finish_plain(*initial_response);
    }
    if (ascii_iequals(mechanism, "LOGIN")) {
        mechanism_ = "LOGIN";
        phase_ = Phase::login_user;
        if (!initial_response) return SaslStep{SaslState::challenge, kUserPrompt, ""};
        return next(*initial_response == "=" ? std::string_view() : *initial_response);
    }
    mechanism_.clear();
    return fail("unsupported authentication mechanism");
}

SaslStep SaslExchange::next(std::string_view line) {
    if (line == "*") {
        phase_ = Phase::finished;
        credentials_ = {};
        return SaslStep{SaslState::cancelled, "", "authentication cancelled by the client"};
    }
    switch (phase_) {
    case Phase::plain_wait:
        return finish_plain(line);
    case Phase::login_user:
    case Phase::login_password: {
        auto bytes = base64_decode(line);
        if (!bytes) return fail(bytes.message());
        if (bytes->size() > kMaxField) return fail("LOGIN field too long");
        if (bytes->find('\0') != std::string::npos) return fail("NUL in a LOGIN field");
        if (phase_ == Phase::login_user) {
            if (bytes->empty()) return fail("LOGIN with an empty user name");
            credentials_.authcid = std::move(*bytes);
            phase_ = Phase::login_password;
            return SaslStep{SaslState::challenge, kPasswordPrompt, ""};
        }
        if (bytes->empty()) return fail("LOGIN with an empty password");
        credentials_.password = std::move(*bytes);
        phase_ = Phase::finished;
        return SaslStep{SaslState::done, "", ""};
    }
    case Phase::none:
    case Phase::finished:
        break;
    }
    return fail("no authentication exchange in progress");
}

}  // namespace tern::auth
