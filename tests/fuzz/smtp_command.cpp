// Fuzz target: SMTP command lines and MAIL/RCPT/BDAT argument parsing.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/smtp/command.hpp"
#include "lib/smtp/reply.hpp"

using namespace tern::smtp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view line(reinterpret_cast<const char*>(data), size);
    Command cmd = parse_command(line);
    if (cmd.args.size() > line.size()) std::abort();
    ParameterPolicy policy;
    for (bool utf8 : {false, true}) {
        auto m = parse_mail_from(cmd.args, policy);
        if (m) {
            // Every accepted sender must be printable back as a path.
            if (!m->sender.null() && m->sender.address.find('@') == std::string::npos) std::abort();
            if (m->sender.utf8 && !m->smtputf8) std::abort();
        } else if (m.message().size() < 4 || m.message()[3] != ' ') {
            std::abort();  // errors are replies: "NNN text"
        }
        auto r = parse_rcpt_to(cmd.args, policy, utf8);
        if (r && r->recipient.utf8 && !utf8) std::abort();
        if (r && r->recipient.null()) std::abort();
    }
    (void)parse_bdat(cmd.args);
    auto x = xtext_decode(line);
    if (x && *xtext_decode(xtext_encode(*x)) != *x) std::abort();
    std::string reply = format_reply(550, "5.1.1", line);
    if (reply.find('\n') != reply.size() - 1) std::abort();  // never split
    return 0;
}
