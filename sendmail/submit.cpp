// sendmail's default mode: one message from standard input into the
// maildrop (see submit.hpp, drop.hpp).
#include "sendmail/submit.hpp"

#include <sysexits.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

#include "lib/mailq/mailq.hpp"
#include "lib/maildrop/header_recipients.hpp"
#include "lib/maildrop/wake.hpp"
#include "sendmail/drop.hpp"
#include "sendmail/input.hpp"

namespace tern::sendmail {

namespace {

constexpr size_t kMaxHeaderBytes = 1024 * 1024;

// RFC 5322 2.2: field-name ':' (no white space in the name), or a
// continuation line starting with white space.
bool is_header_line(const std::string& line, bool first) {
    if (line.empty()) return false;
    if (line[0] == ' ' || line[0] == '\t') return !first;
    size_t colon = line.find(':');
    return colon != std::string::npos && colon > 0 && line.find_first_of(" \t") > colon;
}

void error(const std::string& message) { std::fprintf(stderr, "sendmail: %s\n", message.c_str()); }

}  // namespace

void notify_qmgr(const config::Config& config, bool verbose) {
    // Root and the queue owner reach qmgr's socket; an ordinary user's
    // sendmail (setgid_group only) goes through the pickup FIFO instead.
    auto st = mailq::poke_qmgr(config, "wake");
    if (st) {
        if (verbose) std::fputs("sendmail: qmgr notified\n", stderr);
        return;
    }
    auto fifo = maildrop::write_wake(maildrop::pickup_fifo_path(config));
    if (!verbose) return;
    if (fifo)
        std::fputs("sendmail: pickup notified\n", stderr);
    else
        std::fprintf(stderr, "sendmail: qmgr not reached (%s; %s); the message waits in the maildrop\n",
                     st.message().c_str(), fifo.message().c_str());
}

int submit_message(const Options& options, const config::Config& config) {
    LineReader in(STDIN_FILENO);
    bool eof = false, newline = true;
    bool ended = false;       // the message ended inside the header section
    bool saw_blank = false;   // the header section ended with a blank line
    std::string headers;
    std::string first_body_line;
    bool have_body_line = false, body_line_newline = true;
    bool first = true;
    for (;;) {
        auto line = in.next(&eof, &newline);
        if (!line) {
            error(line.message());
            return EX_NOINPUT;
        }
        if (eof || (!options.ignore_dots && newline && *line == ".")) {
            ended = true;
            break;
        }
        // A leading mbox "From " line is not part of the message.
        if (first && line->rfind("From ", 0) == 0) {
            first = false;
            continue;
        }
        if (newline && line->empty()) {
            saw_blank = true;
            break;
        }
        if (!is_header_line(*line, first) || !newline) {
            first_body_line = std::move(*line);
            have_body_line = true;
            body_line_newline = newline;
            break;
        }
        first = false;
        headers += *line + "\n";
        if (headers.size() > kMaxHeaderBytes) {
            error("message header section too large");
            return EX_DATAERR;
        }
    }

    maildrop::Envelope env;
    env.time = ::time(nullptr);
    env.uid = ::getuid();
    std::string fullname;
    auto me = user_address(config, &fullname);
    if (!me) {
        error(me.message());
        return EX_OSERR;
    }
    env.sender = options.sender ? qualify(*options.sender, config) : *me;
    env.fullname = options.fullname.value_or(fullname);
    env.notify = options.notify;
    env.ret = options.ret;
    env.envid = options.envid;
    for (const auto& r : options.recipients) env.recipients.push_back(qualify(r, config));
    if (options.extract_recipients) {
        auto found = maildrop::extract_header_recipients(headers);
        for (const auto& bad : found.bad) error("ignoring bad address in header: " + bad);
        for (const auto& r : found.recipients) env.recipients.push_back(qualify(r, config));
        headers = std::move(found.headers);
    }
    if (env.recipients.empty()) {
        error(options.extract_recipients ? "no recipient addresses found in message header"
                                         : "no recipients given (use -t to take them from the message)");
        return EX_USAGE;
    }
    for (const auto& field : {env.sender, env.fullname})
        if (field.find_first_of("\r\n") != std::string::npos) {
            error("sender or full name contains a line break");
            return EX_USAGE;
        }

    auto drop = Drop::begin(config, env);
    if (!drop) {
        error("cannot write to the maildrop: " + drop.message());
        return EX_TEMPFAIL;
    }
    auto fail = [&](const Error& e) {
        error(e.message);
        return drop->too_large() ? EX_DATAERR : EX_TEMPFAIL;
    };
    std::string out = headers;
    if (saw_blank || have_body_line) out += "\n";
    if (have_body_line) out += first_body_line + (body_line_newline ? "\n" : "");
    if (auto st = drop->write(out); !st) return fail(st.error());
    while (!ended) {
        auto line = in.next(&eof, &newline);
        if (!line) {
            error(line.message());
            return EX_NOINPUT;  // the Drop is abandoned: nothing is left behind
        }
        if (eof || (!options.ignore_dots && newline && *line == ".")) break;
        if (newline) *line += '\n';
        if (auto st = drop->write(*line); !st) return fail(st.error());
    }
    auto name = drop->commit();
    if (!name) {
        error("cannot write to the maildrop: " + name.message());
        return EX_TEMPFAIL;
    }
    if (options.verbose) std::fprintf(stderr, "sendmail: queued as maildrop file %s\n", name->c_str());
    notify_qmgr(config, options.verbose);
    return EX_OK;
}

}  // namespace tern::sendmail
