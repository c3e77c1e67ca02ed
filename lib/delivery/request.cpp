// Encoding of the qmgr ↔ delivery agent protocol (see request.hpp).
//
// Attribute layouts:
//   rcpt   = "<index> <address length> <address><orcpt>"   (length-prefixed
//            so addresses and ORCPT values may hold any byte)
//   status = "<index> <d|s|b> <enhanced code> <text>"      (text may be empty)
// Every field is validated on decode; a malformed request or response is an
// Error, and the caller treats it like a lost connection (defer, retry).
#include "lib/delivery/request.hpp"

#include <fcntl.h>

#include <algorithm>
#include <charconv>
#include <set>

namespace tern::delivery {

namespace {

constexpr std::string_view kDeliver = "deliver";
constexpr std::string_view kResult = "result";

template <typename T>
bool parse_number(std::string_view text, T& out) {
    if (text.empty()) return false;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size();
}

// Takes a decimal number and the following space off the front of text.
template <typename T>
bool take_number(std::string_view& text, T& out) {
    auto space = text.find(' ');
    if (space == std::string_view::npos || !parse_number(text.substr(0, space), out)) return false;
    text.remove_prefix(space + 1);
    return true;
}

// RFC 3463: class "." subject "." detail; class 2, 4 or 5; 1-3 digits each.
bool valid_enhanced_code(std::string_view code) {
    if (code.size() < 5 || (code[0] != '2' && code[0] != '4' && code[0] != '5') || code[1] != '.') return false;
    std::string_view rest = code.substr(2);
    auto dot = rest.find('.');
    if (dot == std::string_view::npos) return false;
    auto digits = [](std::string_view s) {
        if (s.empty() || s.size() > 3) return false;
        for (char c : s)
            if (c < '0' || c > '9') return false;
        return true;
    };
    return digits(rest.substr(0, dot)) && digits(rest.substr(dot + 1));
}

Result<std::string> required(const ipc::Message& m, std::string_view name) {
    auto v = m.get(name);
    if (!v) return make_error(std::string(m.type()) + ": missing \"" + std::string(name) + "\"");
    return std::string(*v);
}

}  // namespace

ipc::Message encode_request(const Request& request) {
    ipc::Message m(kDeliver);
    m.add("queue_id", request.queue_id);
    m.add("sender", request.sender);
    m.add_int("arrival", request.arrival);
    m.add("size", std::to_string(request.size));
    m.add("nexthop", request.nexthop);
    if (request.maybe_delivered) m.add("maybe_delivered", "1");
    for (const auto& r : request.recipients) {
        std::string value = std::to_string(r.index) + " " + std::to_string(r.address.size()) + " ";
        value += r.address;
        value += r.orcpt;
        m.add("rcpt", value);
        if (r.notify != 0) m.add("notify", std::to_string(r.index) + " " + std::to_string(r.notify));
    }
    if (!request.body_type.empty()) m.add("body_type", request.body_type);
    if (request.smtputf8) m.add("smtputf8", "1");
    if (!request.dsn_ret.empty()) m.add("dsn_ret", request.dsn_ret);
    if (!request.dsn_envid.empty()) m.add("dsn_envid", request.dsn_envid);
    if (request.inline_body) {
        m.add("body", request.body_text);
    } else if (request.body.valid()) {
        int dup = ::fcntl(request.body.get(), F_DUPFD_CLOEXEC, 0);
        if (dup >= 0) m.attach_fd(Fd(dup));  // on failure decode reports the missing body
    }
    return m;
}

Result<Request> decode_request(ipc::Message& message) {
    if (message.type() != kDeliver) return make_error("expected a deliver request, got \"" + message.type() + "\"");
    Request req;
    auto queue_id = required(message, "queue_id");
    if (!queue_id) return queue_id.error();
    if (queue_id->empty()) return make_error("deliver: empty queue_id");
    req.queue_id = *queue_id;
    auto sender = required(message, "sender");  // "" is the null sender
    if (!sender) return sender.error();
    req.sender = *sender;
    auto arrival = message.get_int("arrival");
    if (!arrival) return make_error("deliver " + req.queue_id + ": " + arrival.message());
    req.arrival = *arrival;
    auto size = required(message, "size");
    if (!size) return size.error();
    if (!parse_number(*size, req.size)) return make_error("deliver " + req.queue_id + ": bad size");
    auto nexthop = required(message, "nexthop");
    if (!nexthop) return nexthop.error();
    req.nexthop = *nexthop;
    auto maybe = message.get("maybe_delivered");
    req.maybe_delivered = maybe && *maybe == "1";

    std::set<uint32_t> seen;
    for (std::string_view value : message.get_all("rcpt")) {
        RequestRecipient r;
        size_t address_len = 0;
        if (!take_number(value, r.index) || !take_number(value, address_len) || address_len > value.size())
            return make_error("deliver " + req.queue_id + ": malformed rcpt attribute");
        if (!seen.insert(r.index).second)
            return make_error("deliver " + req.queue_id + ": duplicate recipient index " + std::to_string(r.index));
        r.address = std::string(value.substr(0, address_len));
        r.orcpt = std::string(value.substr(address_len));
        if (r.address.empty()) return make_error("deliver " + req.queue_id + ": empty recipient address");
        req.recipients.push_back(std::move(r));
    }
    if (req.recipients.empty()) return make_error("deliver " + req.queue_id + ": no recipients");
    for (std::string_view value : message.get_all("notify")) {
        uint32_t index = 0;
        unsigned bits = 0;
        if (!take_number(value, index) || !parse_number(value, bits) || bits == 0 || bits > 15)
            return make_error("deliver " + req.queue_id + ": malformed notify attribute");
        auto it = std::find_if(req.recipients.begin(), req.recipients.end(),
                               [&](const RequestRecipient& r) { return r.index == index; });
        if (it == req.recipients.end()) return make_error("deliver " + req.queue_id + ": notify for an unknown recipient");
        it->notify = static_cast<uint8_t>(bits);
    }
    if (auto v = message.get("body_type")) req.body_type = std::string(*v);
    req.smtputf8 = message.get("smtputf8").has_value();
    if (auto v = message.get("dsn_ret")) req.dsn_ret = std::string(*v);
    if (auto v = message.get("dsn_envid")) req.dsn_envid = std::string(*v);
    if (auto text = message.get("body")) {
        if (!message.fds().empty()) return make_error("deliver " + req.queue_id + ": both an inline body and a body fd");
        req.body_text = std::string(*text);
        req.inline_body = true;
        return req;
    }
    if (message.fds().size() != 1) return make_error("deliver " + req.queue_id + ": expected exactly one body fd");
    req.body = message.take_fd(0);
    if (!req.body) return make_error("deliver " + req.queue_id + ": missing body fd");
    return req;
}

ipc::Message encode_response(const Response& response) {
    ipc::Message m(kResult);
    m.add("queue_id", response.queue_id);
    for (const auto& r : response.results) {
        std::string value = std::to_string(r.index) + " " + static_cast<char>(r.outcome) + " " + r.dsn + " ";
        value += r.text;
        m.add("status", value);
    }
    return m;
}

Result<Response> decode_response(const ipc::Message& message) {
    if (message.type() != kResult) return make_error("expected a delivery result, got \"" + message.type() + "\"");
    Response resp;
    auto queue_id = required(message, "queue_id");
    if (!queue_id) return queue_id.error();
    if (queue_id->empty()) return make_error("result: empty queue_id");
    resp.queue_id = *queue_id;
    std::set<uint32_t> seen;
    for (std::string_view value : message.get_all("status")) {
        RecipientResult r;
        auto bad = [&] { return make_error("result " + resp.queue_id + ": malformed status attribute"); };
        if (!take_number(value, r.index)) return bad();
        if (value.size() < 2 || value[1] != ' ') return bad();
        switch (value[0]) {
        case 'd': r.outcome = Outcome::Delivered; break;
        case 's': r.outcome = Outcome::Deferred; break;
        case 'b': r.outcome = Outcome::Bounced; break;
        default: return bad();
        }
        value.remove_prefix(2);
        auto space = value.find(' ');
        if (space == std::string_view::npos) return bad();
        r.dsn = std::string(value.substr(0, space));
        if (!valid_enhanced_code(r.dsn)) return bad();
        r.text = std::string(value.substr(space + 1));
        if (!seen.insert(r.index).second)
            return make_error("result " + resp.queue_id + ": duplicate status for recipient " + std::to_string(r.index));
        resp.results.push_back(std::move(r));
    }
    return resp;
}

}  // namespace tern::delivery
