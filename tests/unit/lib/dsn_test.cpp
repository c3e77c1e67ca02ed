// Unit tests for lib/dsn: RFC 3464 report structure, NOTIFY rules, backoff
// and lifetime computation.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "lib/dsn/policy.hpp"
#include "lib/dsn/report.hpp"
#include "lib/queue/queue.hpp"

using namespace tern::dsn;

namespace {

const std::string kOriginal =
    "Received: from client by mx.example.org\n"
    "From: alice@example.org\n"
    "To: bob@example.org\n"
    "Subject: original subject\n"
    "\n"
    "original body line\n";

ReportInfo failure_info() {
    ReportInfo info;
    info.kind = NoticeKind::Failure;
    info.reporting_mta = "mx.example.org";
    info.queue_id = "0123456789ABCD";
    info.original_sender = "alice@example.org";
    info.report_to = "alice@example.org";
    info.envid = "ENV123";
    info.arrival = 1700000000;
    info.now = 1700003600;
    return info;
}

std::vector<RecipientReport> one_failure() {
    RecipientReport r;
    r.address = "bob@example.org";
    r.orcpt = "rfc822;Bob@Example.org";
    r.action = Action::Failed;
    r.status = "5.2.2";
    r.diagnostic = "mailbox full";
    r.last_attempt = 1700003500;
    return {r};
}

struct Part {
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
};

struct Parsed {
    std::map<std::string, std::string> headers;
    std::vector<Part> parts;
    bool closed = false;
};

std::map<std::string, std::string> parse_headers(const std::string& text, size_t& pos) {
    std::map<std::string, std::string> h;
    std::string last;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string line = text.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.empty()) break;
        if (line[0] == ' ' || line[0] == '\t') {
            h[last] += line;
            continue;
        }
        size_t colon = line.find(':');
        REQUIRE(colon != std::string::npos);
        last = line.substr(0, colon);
        for (auto& c : last) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        h[last] = line.substr(colon + 1);
    }
    return h;
}

// A deliberately small MIME reader: enough to prove the report's shape.
Parsed parse_report(const std::string& text) {
    Parsed p;
    size_t pos = 0;
    p.headers = parse_headers(text, pos);
    const std::string& ct = p.headers["content-type"];
    size_t b = ct.find("boundary=\"");
    REQUIRE(b != std::string::npos);
    std::string boundary = ct.substr(b + 10, ct.find('"', b + 10) - b - 10);
    std::string delim = "\n--" + boundary;
    size_t start = text.find("--" + boundary + "\n", pos);
    REQUIRE(start != std::string::npos);
    start += boundary.size() + 3;
    for (int guard = 0; guard < 10; ++guard) {
        size_t end = text.find(delim, start);
        REQUIRE(end != std::string::npos);
        Part part;
        size_t ppos = start;
        std::string chunk = text.substr(start, end - start);
        size_t cpos = 0;
        part.headers = parse_headers(chunk, cpos);
        part.body = chunk.substr(cpos);
        (void)ppos;
        p.parts.push_back(part);
        size_t after = end + delim.size();
        if (text.compare(after, 2, "--") == 0) {
            p.closed = true;
            break;
        }
        start = after + 1;
    }
    return p;
}

}  // namespace

TEST_CASE("dsn: a failure report is a multipart/report with three parts", "[dsn]") {
    std::string report = compose_report(failure_info(), one_failure(), kOriginal);
    Parsed p = parse_report(report);
    CHECK(p.headers["from"].find("MAILER-DAEMON@mx.example.org") != std::string::npos);
    CHECK(p.headers["to"] == " alice@example.org");
    CHECK(p.headers["content-type"].find("multipart/report") != std::string::npos);
    CHECK(p.headers["content-type"].find("report-type=delivery-status") != std::string::npos);
    CHECK(p.headers["auto-submitted"] == " auto-replied");
    CHECK(p.headers.count("date") == 1);
    CHECK(p.headers.count("message-id") == 1);
    REQUIRE(p.closed);
    REQUIRE(p.parts.size() == 3);
    CHECK(p.parts[0].headers["content-type"].find("text/plain") != std::string::npos);
    CHECK(p.parts[0].body.find("<bob@example.org>: mailbox full") != std::string::npos);
    CHECK(p.parts[1].headers["content-type"] == " message/delivery-status");
    const std::string& ds = p.parts[1].body;
    CHECK(ds.find("Reporting-MTA: dns; mx.example.org\n") != std::string::npos);
    CHECK(ds.find("Original-Envelope-Id: ENV123\n") != std::string::npos);
    CHECK(ds.find("Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\n") != std::string::npos);
    CHECK(ds.find("\n\nFinal-Recipient: rfc822; bob@example.org\n") != std::string::npos);
    CHECK(ds.find("Original-Recipient: rfc822;Bob@Example.org\n") != std::string::npos);
    CHECK(ds.find("Action: failed\n") != std::string::npos);
    CHECK(ds.find("Status: 5.2.2\n") != std::string::npos);
    CHECK(ds.find("Diagnostic-Code: x-tern; mailbox full\n") != std::string::npos);
    CHECK(p.parts[2].headers["content-type"] == " message/rfc822");
    CHECK(p.parts[2].body == kOriginal);
}

TEST_CASE("dsn: RET=HDRS and oversized originals return headers only", "[dsn]") {
    ReportInfo info = failure_info();
    info.headers_only = true;
    Parsed p = parse_report(compose_report(info, one_failure(), kOriginal));
    REQUIRE(p.parts.size() == 3);
    CHECK(p.parts[2].headers["content-type"] == " text/rfc822-headers");
    CHECK(p.parts[2].body.find("Subject: original subject") != std::string::npos);
    CHECK(p.parts[2].body.find("original body line") == std::string::npos);

    info.headers_only = false;
    info.original_size_limit = 10;
    p = parse_report(compose_report(info, one_failure(), kOriginal));
    REQUIRE(p.parts.size() == 3);
    CHECK(p.parts[2].headers["content-type"] == " text/rfc822-headers");
}

TEST_CASE("dsn: an SMTP reply is typed smtp, hostile text stays on one line", "[dsn]") {
    auto rcpts = one_failure();
    rcpts[0].diagnostic = "550 5.1.1 <bob@example.org>: user unknown\r\nInjected: header";
    rcpts[0].address = "bob@example.org\nBcc: victim@example.net";
    std::string report = compose_report(failure_info(), rcpts, kOriginal);
    CHECK(report.find("Diagnostic-Code: smtp; 550 5.1.1 <bob@example.org>: user unknown  Injected: header\n") !=
          std::string::npos);
    CHECK(report.find("\nInjected:") == std::string::npos);
    CHECK(report.find("\nBcc: victim") == std::string::npos);
}

TEST_CASE("dsn: delay warnings and multiple recipients", "[dsn]") {
    ReportInfo info = failure_info();
    info.kind = NoticeKind::Delay;
    info.delay_text = "4 hours";
    auto rcpts = one_failure();
    rcpts[0].action = Action::Delayed;
    rcpts[0].status = "4.2.2";
    RecipientReport second;
    second.address = "carol@example.org";
    second.action = Action::Delayed;
    second.status = "4.4.1";
    second.diagnostic = "connection refused";
    rcpts.push_back(second);
    std::string report = compose_report(info, rcpts, kOriginal);
    Parsed p = parse_report(report);
    CHECK(p.headers["subject"].find("Delayed Mail") != std::string::npos);
    CHECK(p.parts[0].body.find("THIS IS A WARNING ONLY") != std::string::npos);
    const std::string& ds = p.parts[1].body;
    CHECK(ds.find("Action: delayed\n") != std::string::npos);
    CHECK(ds.find("Final-Recipient: rfc822; carol@example.org\n") != std::string::npos);
    // No ORCPT given: no Original-Recipient field for carol.
    size_t carol = ds.find("Final-Recipient: rfc822; carol@example.org");
    CHECK(ds.find("Original-Recipient", carol) == std::string::npos);
}

TEST_CASE("dsn: write_report streams the same text as compose_report", "[dsn]") {
    char in_tmpl[] = "/tmp/dsn-in-XXXXXX";
    char out_tmpl[] = "/tmp/dsn-out-XXXXXX";
    int in = ::mkstemp(in_tmpl);
    int out = ::mkstemp(out_tmpl);
    REQUIRE(in >= 0);
    REQUIRE(out >= 0);
    REQUIRE(::write(in, kOriginal.data(), kOriginal.size()) == static_cast<ssize_t>(kOriginal.size()));
    for (bool hdrs : {false, true}) {
        REQUIRE(::ftruncate(out, 0) == 0);
        REQUIRE(::lseek(out, 0, SEEK_SET) == 0);
        ReportInfo info = failure_info();
        info.headers_only = hdrs;
        REQUIRE(write_report(out, info, one_failure(), in, kOriginal.size()).ok());
        std::string written(8192, '\0');
        ssize_t n = ::pread(out, written.data(), written.size(), 0);
        REQUIRE(n > 0);
        written.resize(static_cast<size_t>(n));
        Parsed p = parse_report(written);
        REQUIRE(p.parts.size() == 3);
        CHECK(p.parts[2].body == (hdrs ? std::string(header_section(kOriginal)) : kOriginal));
    }
    ::close(in);
    ::close(out);
    ::unlink(in_tmpl);
    ::unlink(out_tmpl);
}

TEST_CASE("dsn: NOTIFY rules (RFC 3461 4.1)", "[dsn]") {
    using namespace tern::queue;
    CHECK(wants_notice(kNotifyNone, NoticeKind::Failure));
    CHECK(wants_notice(kNotifyNone, NoticeKind::Delay));
    CHECK_FALSE(wants_notice(kNotifyNone, NoticeKind::Success));
    CHECK_FALSE(wants_notice(kNotifyNever, NoticeKind::Failure));
    CHECK_FALSE(wants_notice(kNotifyNever, NoticeKind::Delay));
    CHECK(wants_notice(kNotifySuccess, NoticeKind::Success));
    CHECK_FALSE(wants_notice(kNotifySuccess, NoticeKind::Failure));
    CHECK(wants_notice(kNotifyFailure | kNotifyDelay, NoticeKind::Delay));
    CHECK_FALSE(wants_notice(kNotifyFailure, NoticeKind::Delay));
}

TEST_CASE("dsn: backoff doubles from the minimum and stops at the maximum", "[dsn][backoff]") {
    CHECK(backoff_seconds(1, 300, 4000) == 300);
    CHECK(backoff_seconds(2, 300, 4000) == 600);
    CHECK(backoff_seconds(3, 300, 4000) == 1200);
    CHECK(backoff_seconds(4, 300, 4000) == 2400);
    CHECK(backoff_seconds(5, 300, 4000) == 4000);
    CHECK(backoff_seconds(4000000000u, 300, 4000) == 4000);
    CHECK(backoff_seconds(0, 300, 4000) == 300);
    CHECK(backoff_seconds(3, 1, 1) == 1);
    CHECK(backoff_seconds(3, 0, 0) == 1);        // never a busy loop
    CHECK(backoff_seconds(2, 500, 100) == 500);  // max below min: min wins
}

TEST_CASE("dsn: queue lifetime", "[dsn]") {
    CHECK_FALSE(lifetime_expired(1000, 1000 + 5 * 86400 - 1, 5 * 86400));
    CHECK(lifetime_expired(1000, 1000 + 5 * 86400, 5 * 86400));
    CHECK(lifetime_expired(1000, 1000, 0));
}
