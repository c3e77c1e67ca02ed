// |command deliveries (aliases, :include:, ~/.forward): the message is piped
// into `/bin/sh -c COMMAND`, run with the identity chosen by the resolver,
// in its home directory, with a small environment like Postfix's local(8):
//
//   HOME USER LOGNAME SHELL PATH SENDER RECIPIENT ORIGINAL_RECIPIENT
//   LOCAL DOMAIN EXTENSION
//
// The exit status follows sysexits.h, as Postfix maps it: 0 delivered,
// EX_TEMPFAIL (75) and EX_OSERR deferred, EX_NOUSER 5.1.1, EX_NOPERM 5.7.0,
// any other failure bounced (5.3.0) with the command's first output line;
// a command killed by a signal or running past command_time_limit is killed
// and the delivery deferred.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "local-delivery/identity.hpp"
#include "local-delivery/message.hpp"
#include "local-delivery/result.hpp"

namespace tern::local {

struct CommandJob {
    std::string command;
    Identity as;
    std::vector<std::string> env;  // "NAME=value", added to the base environment
    std::string prefix;            // headers prepended to the message
    const QueuedMessage* body = nullptr;
    std::chrono::seconds time_limit{1000};
};

// Maps a command's exit status (as from waitpid) to a result.
DeliveryResult result_of_exit(int wait_status, const std::string& output);

DeliveryResult run_command(const CommandJob& job);

}  // namespace tern::local
