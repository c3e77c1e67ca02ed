// Address parsing, formatting and CIDR matching; see address.hpp.
// Only numeric addresses are matched: a network list never triggers DNS.
#include "lib/net/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstring>

namespace tern::net {

namespace {

bool parse_port(std::string_view text, int& port) {
    if (text.empty() || text.size() > 5) return false;
    int value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || value < 1 || value > 65535) return false;
    port = value;
    return true;
}

bool is_v4_mapped(const in6_addr& a) {
    static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(a.s6_addr, prefix, 12) == 0;
}

std::string_view strip_brackets(std::string_view s) {
    if (s.size() >= 2 && s.front() == '[' && s.back() == ']') return s.substr(1, s.size() - 2);
    return s;
}

}  // namespace

Result<HostPort> parse_host_port(std::string_view text) {
    HostPort out;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return make_error("missing ']' in \"" + std::string(text) + "\"");
        out.host = std::string(text.substr(1, close - 1));
        if (close + 1 >= text.size() || text[close + 1] != ':')
            return make_error("missing port in \"" + std::string(text) + "\"");
        port_text = text.substr(close + 2);
        in6_addr a6;
        if (inet_pton(AF_INET6, out.host.c_str(), &a6) != 1)
            return make_error("bad IPv6 address in \"" + std::string(text) + "\"");
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return make_error("missing port in \"" + std::string(text) + "\"");
        if (text.substr(0, colon).find(':') != std::string_view::npos)
            return make_error("IPv6 address needs brackets in \"" + std::string(text) + "\"");
        out.host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
        if (out.host == "*") out.host.clear();
    }
    for (char c : out.host)
        if (static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '[' || c == ']')
            return make_error("bad host in \"" + std::string(text) + "\"");
    if (!parse_port(port_text, out.port)) return make_error("bad port in \"" + std::string(text) + "\"");
    return out;
}

std::string format_host_port(const std::string& host, int port) {
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

std::string ip_string(const sockaddr* address) {
    if (address == nullptr) return "";
    char buf[INET6_ADDRSTRLEN] = {};
    if (address->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(address);
        inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        return buf;
    }
    if (address->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
        if (is_v4_mapped(in6->sin6_addr)) {
            inet_ntop(AF_INET, in6->sin6_addr.s6_addr + 12, buf, sizeof buf);
        } else {
            inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
        }
        return buf;
    }
    return "";
}

int port_of(const sockaddr* address) {
    if (address == nullptr) return 0;
    if (address->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(address)->sin_port);
    if (address->sa_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(address)->sin6_port);
    return 0;
}

std::string endpoint_string(const sockaddr* address) {
    if (address == nullptr) return "";
    if (address->sa_family == AF_UNIX) {
        auto* un = reinterpret_cast<const sockaddr_un*>(address);
        return std::string(un->sun_path, strnlen(un->sun_path, sizeof un->sun_path));
    }
    std::string ip = ip_string(address);
    if (ip.empty()) return "";
    return format_host_port(ip, port_of(address));
}

Result<sockaddr_storage> parse_ip(std::string_view ip, int port) {
    std::string text(strip_brackets(ip));
    sockaddr_storage ss{};
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, text.c_str(), &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(static_cast<uint16_t>(port));
        return ss;
    }
    if (inet_pton(AF_INET6, text.c_str(), &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(static_cast<uint16_t>(port));
        return ss;
    }
    return make_error("bad IP address \"" + std::string(ip) + "\"");
}

Result<NetworkList> NetworkList::parse(const std::vector<std::string>& entries) {
    NetworkList list;
    for (const auto& entry : entries) {
        if (entry.empty()) continue;
        std::string_view text(entry);
        std::string_view addr_text = text;
        int prefix = -1;
        if (auto slash = text.rfind('/'); slash != std::string_view::npos) {
            addr_text = text.substr(0, slash);
            std::string_view p = text.substr(slash + 1);
            int value = 0;
            auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
            if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || value < 0)
                return make_error("bad network \"" + entry + "\": bad prefix length");
            prefix = value;
        }
        auto ss = parse_ip(addr_text);
        if (!ss) return make_error("bad network \"" + entry + "\": not a numeric IP address");
        Network net;
        net.family = ss->ss_family;
        int max = net.family == AF_INET ? 32 : 128;
        if (prefix < 0) prefix = max;
        if (prefix > max) return make_error("bad network \"" + entry + "\": prefix longer than " + std::to_string(max));
        net.prefix = prefix;
        if (net.family == AF_INET)
            std::memcpy(net.bytes, &reinterpret_cast<sockaddr_in*>(&*ss)->sin_addr, 4);
        else
            std::memcpy(net.bytes, &reinterpret_cast<sockaddr_in6*>(&*ss)->sin6_addr, 16);
        // Clear host bits, so "10.1.2.3/8" means 10.0.0.0/8 as an admin intends.
        for (int bit = prefix; bit < max; ++bit) net.bytes[bit / 8] &= static_cast<unsigned char>(~(0x80 >> (bit % 8)));
        list.networks_.push_back(net);
    }
    return list;
}

Result<NetworkList> NetworkList::parse(std::string_view list) {
    std::vector<std::string> entries;
    size_t pos = 0;
    while (pos < list.size()) {
        size_t end = list.find_first_of(", \t\r\n", pos);
        if (end == std::string_view::npos) end = list.size();
        if (end > pos) entries.emplace_back(list.substr(pos, end - pos));
        pos = end + 1;
    }
    return parse(entries);
}

bool NetworkList::matches(int family, const unsigned char* bytes) const {
    for (const auto& net : networks_) {
        if (net.family != family) continue;
        int full = net.prefix / 8, rest = net.prefix % 8;
        if (std::memcmp(net.bytes, bytes, static_cast<size_t>(full)) != 0) continue;
        if (rest != 0) {
            unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
            if ((bytes[full] & mask) != net.bytes[full]) continue;
        }
        return true;
    }
    return false;
}

bool NetworkList::contains(const sockaddr* address) const {
    if (address == nullptr) return false;
    if (address->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(address);
        return matches(AF_INET, reinterpret_cast<const unsigned char*>(&in->sin_addr));
    }
    if (address->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
        if (is_v4_mapped(in6->sin6_addr) && matches(AF_INET, in6->sin6_addr.s6_addr + 12)) return true;
        return matches(AF_INET6, in6->sin6_addr.s6_addr);
    }
    return false;
}

bool NetworkList::contains(std::string_view ip) const {
    auto ss = parse_ip(ip);
    if (!ss) return false;
    return contains(reinterpret_cast<const sockaddr*>(&*ss));
}

}  // namespace tern::net
