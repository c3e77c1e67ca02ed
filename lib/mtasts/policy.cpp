// MTA-STS TXT records and policy files (see policy.hpp).
#include "lib/mtasts/policy.hpp"

#include <charconv>

namespace tern::mtasts {

namespace {

constexpr int64_t kMaxAge = 31557600;  // RFC 8461 3.2: one year

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

}  // namespace

std::string_view mode_name(Mode mode) {
    switch (mode) {
    case Mode::Enforce: return "enforce";
    case Mode::Testing: return "testing";
    case Mode::None: return "none";
    }
    return "none";
}

bool Policy::matches(std::string_view host) const {
    std::string h = lower(host);
    while (!h.empty() && h.back() == '.') h.pop_back();
    for (const auto& p : mx) {
        if (p.size() > 2 && p[0] == '*' && p[1] == '.') {
            size_t dot = h.find('.');
            if (dot != std::string::npos && dot > 0 && h.substr(dot + 1) == p.substr(2)) return true;
        } else if (h == p) {
            return true;
        }
    }
    return false;
}

Result<std::string> parse_txt(std::string_view record) {
    std::string id;
    bool version = false;
    bool first = true;
    while (!record.empty()) {
        size_t semi = record.find(';');
        std::string_view field = trim(record.substr(0, semi));
        record = semi == std::string_view::npos ? std::string_view() : record.substr(semi + 1);
        if (field.empty()) continue;
        size_t eq = field.find('=');
        if (eq == std::string_view::npos) return make_error("malformed _mta-sts record field");
        std::string_view key = field.substr(0, eq), value = field.substr(eq + 1);
        if (first) {
            if (key != "v" || value != "STSv1") return make_error("not an STSv1 record");
            version = true;
        } else if (key == "id") {
            if (value.empty() || value.size() > 32) return make_error("bad MTA-STS id");
            for (char c : value)
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
                    return make_error("bad MTA-STS id");
            id = std::string(value);
        }
        first = false;
    }
    if (!version || id.empty()) return make_error("_mta-sts record without v=STSv1 and id");
    return id;
}

Result<Policy> parse(std::string_view text) {
    Policy p;
    bool version = false, mode = false, age = false;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = trim(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (line.empty()) continue;
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) return make_error("malformed policy line");
        std::string_view key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
        if (key == "version") {
            if (value != "STSv1") return make_error("unsupported policy version");
            version = true;
        } else if (key == "mode") {
            if (value == "enforce") p.mode = Mode::Enforce;
            else if (value == "testing") p.mode = Mode::Testing;
            else if (value == "none") p.mode = Mode::None;
            else return make_error("unknown policy mode");
            mode = true;
        } else if (key == "mx") {
            if (value.empty() || p.mx.size() >= 100) return make_error("bad mx pattern");
            p.mx.push_back(lower(value));
        } else if (key == "max_age") {
            int64_t n = 0;
            auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec != std::errc() || ptr != value.data() + value.size() || n < 0 || value.size() > 10)
                return make_error("bad max_age");
            p.max_age = std::min(n, kMaxAge);
            age = true;
        }
    }
    if (!version || !mode || !age) return make_error("policy lacks version, mode or max_age");
    if (p.mode != Mode::None && p.mx.empty()) return make_error("policy without mx patterns");
    return p;
}

}  // namespace tern::mtasts
