// Base64 and quoted-printable decoding: see codec.hpp.
#include "lib/mime/codec.hpp"

#include <array>
#include <cstdint>

namespace tern::mime {
namespace {

constexpr std::array<int8_t, 256> base64_table() {
    std::array<int8_t, 256> t{};
    for (auto& v : t) v = -1;
    constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
    return t;
}
constexpr auto kBase64 = base64_table();

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

}  // namespace

std::string base64_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size() / 4 * 3 + 3);
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '=') break;  // padding ends the data
        int v = kBase64[static_cast<unsigned char>(c)];
        if (v < 0) continue;  // line ends and garbage
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

std::string qp_decode(std::string_view in, bool q_encoding) {
    std::string out;
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '_' && q_encoding) {
            out += ' ';
        } else if (c == '=') {
            if (i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
                out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
                i += 2;
                continue;
            }
            // Soft line break: "=" then optional white space then the line end.
            size_t j = i + 1;
            while (j < in.size() && (in[j] == ' ' || in[j] == '\t')) ++j;
            if (!q_encoding && j < in.size() && (in[j] == '\n' || (in[j] == '\r' && j + 1 < in.size() && in[j + 1] == '\n'))) {
                i = in[j] == '\r' ? j + 1 : j;
                continue;
            }
            if (!q_encoding && j == in.size()) break;
            out += c;  // broken escape: literal
        } else if ((c == ' ' || c == '\t') && !q_encoding) {
            // RFC 2045 6.7 (3): trailing white space on a line is padding.
            size_t j = i;
            while (j < in.size() && (in[j] == ' ' || in[j] == '\t')) ++j;
            if (j < in.size() && in[j] != '\n' && in[j] != '\r') out.append(in.substr(i, j - i));
            i = j - 1;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace tern::mime
