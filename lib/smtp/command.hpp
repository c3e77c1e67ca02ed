// SMTP command lines (RFC 5321 4.1) and the ESMTP parameters of MAIL FROM
// and RCPT TO: SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8
// (RFC 6531), RET/ENVID/NOTIFY/ORCPT (RFC 3461, xtext decoded), AUTH
// (RFC 4954).  Shared by smtpd (parsing what clients send) and the SMTP
// client (parsing nothing, but using the xtext helpers).
//
// Errors are complete SMTP replies ("555 5.5.4 Unsupported parameter FOO")
// so that smtpd sends them unchanged.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lib/address/address.hpp"
#include "lib/core/result.hpp"

namespace tern::smtp {

enum class Verb { Helo, Ehlo, Mail, Rcpt, Data, Bdat, Rset, Noop, Quit, Help, Vrfy, Expn, Starttls, Auth, Unknown };

struct Command {
    Verb verb = Verb::Unknown;
    std::string_view name;  // the verb as sent, for logs and "502 5.5.2 Error: command not recognized"
    std::string_view args;  // after the verb and one space; trailing white space removed
};

// `line` excludes CRLF.  Verbs are case-insensitive (RFC 5321 2.4).
Command parse_command(std::string_view line);
// Lower-case name used in Postfix's disconnect summary ("ehlo", "mail", ...).
std::string_view verb_key(Verb verb);

enum class BodyType { Unspecified, SevenBit, EightBitMime, BinaryMime };
std::string_view body_type_name(BodyType type);  // "", "7BIT", "8BITMIME", "BINARYMIME"

struct MailFrom {
    address::Path sender;
    std::optional<uint64_t> size;
    BodyType body = BodyType::Unspecified;
    bool smtputf8 = false;
    std::string ret;    // "", "FULL", "HDRS"
    std::string envid;  // xtext-decoded
    std::string auth;   // xtext-decoded AUTH= value ("<>" allowed)
};

// Notify flags match queue::Notify values.
struct RcptTo {
    address::Path recipient;
    uint8_t notify = 0;  // 0 = not given; 1 success, 2 failure, 4 delay, 8 never
    std::string orcpt;   // "rfc822;user@example.org" with the address xtext-decoded
};

struct ParameterPolicy {
    bool eightbitmime = true;
    bool binarymime = true;  // only meaningful with CHUNKING
    bool smtputf8 = true;
    bool dsn = true;
    bool auth = true;
};

// args: the text after "MAIL" ("FROM:<a@b> SIZE=100"), as Command::args.
Result<MailFrom> parse_mail_from(std::string_view args, const ParameterPolicy& policy);
// smtputf8: whether this transaction's MAIL FROM had SMTPUTF8.
Result<RcptTo> parse_rcpt_to(std::string_view args, const ParameterPolicy& policy, bool smtputf8);

// BDAT <size> [LAST] (RFC 3030 2).
struct BdatArgs {
    uint64_t size = 0;
    bool last = false;
};
Result<BdatArgs> parse_bdat(std::string_view args);

// xtext (RFC 3461 4): "+XX" hex escapes.  decode fails on bad escapes or
// characters outside xchar.
Result<std::string> xtext_decode(std::string_view text);
std::string xtext_encode(std::string_view text);

}  // namespace tern::smtp
