// The modes of sendmail(1): a message from standard input (the default),
// an SMTP dialogue on standard input/output (-bs), and the small ones
// (mailq, newaliases, -q).  Each returns a sysexits.h exit status and
// prints its diagnostics to stderr as "sendmail: ...".
#pragma once

#include "lib/config/config.hpp"
#include "sendmail/options.hpp"

namespace tern::sendmail {

int submit_message(const Options& options, const config::Config& config);  // submit.cpp
int smtp_session(const Options& options, const config::Config& config);    // smtp_session.cpp
int list_queue(const config::Config& config);                              // main.cpp
int rebuild_aliases(const config::Config& config);                          // main.cpp
int flush_queue(const config::Config& config);                              // main.cpp

// Tells qmgr that the maildrop has mail; quiet when tern is not running
// (qmgr picks the file up when it starts).
void notify_qmgr(const config::Config& config, bool verbose);

}  // namespace tern::sendmail
