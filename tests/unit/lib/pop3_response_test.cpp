// Unit tests for lib/pop3/response: status lines, response codes, and the
// RETR/TOP encoder (CRLF, dot-stuffing, TOP's line limit, piecewise input).
#include <catch2/catch.hpp>

#include "lib/pop3/response.hpp"

using namespace tern::pop3;

namespace {

// Encodes `in` fed in pieces of `step` bytes.
std::string encode(std::string_view in, size_t step, std::optional<uint32_t> lines = std::nullopt) {
    MultilineEncoder enc(lines);
    std::string out;
    for (size_t i = 0; i < in.size(); i += step)
        if (!enc.feed(in.substr(i, step), out)) break;
    enc.finish(out);
    return out;
}

}  // namespace

TEST_CASE("pop3 response: status lines and codes", "[pop3]") {
    CHECK(ok("") == "+OK\r\n");
    CHECK(ok("2 320") == "+OK 2 320\r\n");
    CHECK(err("", "no such message") == "-ERR no such message\r\n");
    CHECK(err("AUTH", "authentication failed") == "-ERR [AUTH] authentication failed\r\n");
    CHECK(err("SYS/TEMP", "") == "-ERR [SYS/TEMP]\r\n");
    // Input can never split a response line.
    CHECK(err("", "a\r\nb") == "-ERR a??b\r\n");
    std::string long_line = ok(std::string(1000, 'x'));
    CHECK(long_line.size() == kMaxResponseLine);
    CHECK(long_line.substr(long_line.size() - 2) == "\r\n");
}

TEST_CASE("pop3 response: RETR encoding is CRLF and dot-stuffed", "[pop3]") {
    std::string msg = "Subject: x\n\n.hidden\n..two\nplain.\n.\n";
    std::string want = "Subject: x\r\n\r\n..hidden\r\n...two\r\nplain.\r\n..\r\n.\r\n";
    for (size_t step : {1, 2, 3, 7, 1000}) {
        INFO("step " << step);
        CHECK(encode(msg, step) == want);
    }
}

TEST_CASE("pop3 response: unterminated last line, empty message, stored CRLF", "[pop3]") {
    CHECK(encode("a\nb", 1) == "a\r\nb\r\n.\r\n");
    CHECK(encode("", 1) == ".\r\n");
    CHECK(encode(".", 1) == "..\r\n.\r\n");
    for (size_t step : {1, 2, 5}) {
        INFO("step " << step);
        CHECK(encode("a\r\n\r\n.b\r\n", step) == "a\r\n\r\n..b\r\n.\r\n");
        CHECK(encode("bare\rcr\n", step) == "bare\rcr\r\n.\r\n");
        CHECK(encode("end\r", step) == "end\r\r\n.\r\n");
    }
}

TEST_CASE("pop3 response: TOP sends the header, the blank line and n body lines", "[pop3]") {
    std::string msg = "From: a\nSubject: b\n\nline1\n.line2\nline3\n";
    for (size_t step : {1, 4, 1000}) {
        INFO("step " << step);
        CHECK(encode(msg, step, 0) == "From: a\r\nSubject: b\r\n\r\n.\r\n");
        CHECK(encode(msg, step, 2) == "From: a\r\nSubject: b\r\n\r\nline1\r\n..line2\r\n.\r\n");
        CHECK(encode(msg, step, 3) == encode(msg, step));
        CHECK(encode(msg, step, 100) == encode(msg, step));
    }
    // No body separator: the whole message is header.
    CHECK(encode("From: a\nSubject: b", 3, 0) == "From: a\r\nSubject: b\r\n.\r\n");
    // A CRLF blank line ends the header too.
    CHECK(encode("A: b\r\n\r\nx\r\ny\r\n", 1, 1) == "A: b\r\n\r\nx\r\n.\r\n");
}

TEST_CASE("pop3 response: the encoder stops taking input once TOP is satisfied", "[pop3]") {
    MultilineEncoder enc(0);
    std::string out;
    CHECK_FALSE(enc.feed("H: v\n\nbody\n", out));
    CHECK(enc.done());
    CHECK_FALSE(enc.feed("more\n", out));
    CHECK(out == "H: v\r\n\r\n");
}
