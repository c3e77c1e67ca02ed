// Queue record encoding (see records.hpp for the format and its rules).
#include "lib/queue/records.hpp"

#include <limits>

namespace tern::queue::records {

namespace {

constexpr uint8_t kVersion = 1;

constexpr uint8_t kEnvSmtputf8 = 1, kEnvIsBounce = 2, kEnvFlagsAll = 3;
constexpr uint8_t kRcptDelayWarned = 1, kRcptFlagsAll = 1;
constexpr uint64_t kNotifyAll = kNotifySuccess | kNotifyFailure | kNotifyDelay | kNotifyNever;

class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}
    void byte(uint8_t b) { out_.push_back(char(b)); }
    void uvar(uint64_t v) {
        while (v >= 0x80) {
            out_.push_back(char(uint8_t(v) | 0x80));
            v >>= 7;
        }
        out_.push_back(char(v));
    }
    void svar(int64_t v) { uvar((uint64_t(v) << 1) ^ uint64_t(v >> 63)); }
    void str(std::string_view s) {
        uvar(s.size());
        out_.append(s);
    }

private:
    std::string& out_;
};

// Every read checks bounds; after the first failure ok() stays false and
// reads return zero values, so a decoder can read all fields and check once.
class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    bool ok() const { return ok_; }
    bool done() const { return ok_ && pos_ == in_.size(); }

    uint8_t byte() {
        if (!ok_ || pos_ >= in_.size()) return fail();
        return uint8_t(in_[pos_++]);
    }
    uint64_t uvar() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (!ok_ || pos_ >= in_.size()) return fail();
            uint8_t b = uint8_t(in_[pos_++]);
            if (shift == 63 && (b & 0x7e)) return fail();  // more than 64 bits
            v |= uint64_t(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        return fail();
    }
    int64_t svar() {
        uint64_t u = uvar();
        return int64_t(u >> 1) ^ -int64_t(u & 1);
    }
    uint64_t uvar_max(uint64_t max) {
        uint64_t v = uvar();
        if (v > max) return fail();
        return v;
    }
    std::string str() {
        uint64_t n = uvar();
        if (!ok_ || n > in_.size() - pos_) {
            fail();
            return {};
        }
        std::string s(in_.substr(pos_, n));
        pos_ += n;
        return s;
    }

private:
    uint8_t fail() {
        ok_ = false;
        return 0;
    }
    std::string_view in_;
    size_t pos_ = 0;
    bool ok_ = true;
};

void put_be(std::string& out, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out.push_back(char(uint8_t(v >> (8 * i))));
}

uint64_t get_be(std::string_view in, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | uint8_t(in[i]);
    return v;
}

}  // namespace

std::string encode_envelope(const Envelope& e) {
    std::string out;
    Writer w(out);
    w.byte(kVersion);
    w.str(e.sender);
    w.svar(e.arrival_us);
    w.uvar(e.size);
    w.str(e.client_name);
    w.str(e.client_addr);
    w.str(e.helo);
    w.str(e.protocol);
    w.str(e.auth_user);
    w.str(e.body_type);
    w.byte(uint8_t((e.smtputf8 ? kEnvSmtputf8 : 0) | (e.is_bounce ? kEnvIsBounce : 0)));
    w.str(e.dsn_ret);
    w.str(e.dsn_envid);
    return out;
}

std::optional<Envelope> decode_envelope(std::string_view id, std::string_view bytes) {
    Reader r(bytes);
    if (r.byte() != kVersion) return std::nullopt;
    Envelope e;
    e.id = std::string(id);
    e.sender = r.str();
    e.arrival_us = r.svar();
    e.size = r.uvar();
    e.client_name = r.str();
    e.client_addr = r.str();
    e.helo = r.str();
    e.protocol = r.str();
    e.auth_user = r.str();
    e.body_type = r.str();
    uint8_t flags = r.byte();
    e.dsn_ret = r.str();
    e.dsn_envid = r.str();
    if (!r.done() || (flags & ~kEnvFlagsAll)) return std::nullopt;
    e.smtputf8 = flags & kEnvSmtputf8;
    e.is_bounce = flags & kEnvIsBounce;
    return e;
}

std::string encode_recipient(const Recipient& rc) {
    std::string out;
    Writer w(out);
    w.byte(kVersion);
    w.str(rc.address);
    w.str(rc.orcpt);
    w.uvar(rc.notify);
    w.uvar(uint64_t(rc.state));
    w.uvar(rc.attempts);
    w.svar(rc.next_try);
    w.svar(rc.last_try);
    w.byte(rc.delay_warned ? kRcptDelayWarned : 0);
    w.str(rc.last_status);
    w.str(rc.last_error);
    return out;
}

std::optional<Recipient> decode_recipient(uint32_t index, std::string_view bytes) {
    Reader r(bytes);
    if (r.byte() != kVersion) return std::nullopt;
    Recipient rc;
    rc.index = index;
    rc.address = r.str();
    rc.orcpt = r.str();
    rc.notify = uint8_t(r.uvar_max(kNotifyAll));
    rc.state = RecipientState(r.uvar_max(uint64_t(RecipientState::Bounced)));
    rc.attempts = uint32_t(r.uvar_max(std::numeric_limits<uint32_t>::max()));
    rc.next_try = r.svar();
    rc.last_try = r.svar();
    uint8_t flags = r.byte();
    rc.last_status = r.str();
    rc.last_error = r.str();
    if (!r.done() || (flags & ~kRcptFlagsAll)) return std::nullopt;
    rc.delay_warned = flags & kRcptDelayWarned;
    return rc;
}

std::string encode_message(const Message& m) {
    std::string out;
    Writer w(out);
    w.byte(kVersion);
    w.str(m.envelope.id);
    w.str(encode_envelope(m.envelope));
    w.uvar(m.recipients.size());
    for (const auto& rc : m.recipients) w.str(encode_recipient(rc));
    w.byte(m.held ? 1 : 0);
    w.str(m.small_body);
    return out;
}

std::optional<Message> decode_message(std::string_view bytes) {
    Reader r(bytes);
    if (r.byte() != kVersion) return std::nullopt;
    Message m;
    std::string id = r.str();
    auto envelope = decode_envelope(id, r.str());
    // Each recipient takes bytes: a count above the input's length is
    // corrupt (and must not make a long loop).
    uint64_t count = r.uvar_max(bytes.size());
    for (uint64_t i = 0; i < count && r.ok(); ++i) {
        auto rc = decode_recipient(uint32_t(i), r.str());
        if (!rc) return std::nullopt;
        m.recipients.push_back(std::move(*rc));
    }
    uint8_t held = r.byte();
    m.small_body = r.str();
    if (!r.done() || !envelope || held > 1 || !valid_queue_id(id)) return std::nullopt;
    m.envelope = std::move(*envelope);
    m.held = held == 1;
    return m;
}

std::string encode_checkpoint(uint64_t seq) {
    std::string out;
    put_be(out, seq, 8);
    return out;
}

std::optional<uint64_t> decode_checkpoint(std::string_view bytes) {
    if (bytes.size() != 8) return std::nullopt;
    return get_be(bytes, 8);
}

std::string rcpt_key(std::string_view id, uint32_t index) {
    std::string key(id);
    put_be(key, index, 4);
    return key;
}

std::optional<std::pair<std::string_view, uint32_t>> split_rcpt_key(std::string_view key) {
    if (key.size() <= 4) return std::nullopt;
    size_t n = key.size() - 4;
    return std::pair{key.substr(0, n), uint32_t(get_be(key.substr(n), 4))};
}

std::string due_key(int64_t next_try, std::string_view id) {
    std::string key;
    put_be(key, uint64_t(next_try < 0 ? 0 : next_try), 8);
    key.append(id);
    return key;
}

std::optional<std::pair<int64_t, std::string_view>> split_due_key(std::string_view key) {
    if (key.size() <= 8) return std::nullopt;
    uint64_t t = get_be(key, 8);
    if (t > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return std::pair{int64_t(t), key.substr(8)};
}

}  // namespace tern::queue::records
