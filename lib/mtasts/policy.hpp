// MTA-STS (RFC 8461): the "_mta-sts" TXT record and the policy file a
// domain serves at https://mta-sts.<domain>/.well-known/mta-sts.txt.
//
// parse_txt() accepts "v=STSv1; id=<1-32 alphanumerics>" (3.1); parse()
// reads the policy's key: value lines (3.2): version STSv1, mode enforce,
// testing or none, one or more mx patterns ("mail.example.org" or
// "*.example.org", whose wildcard stands for exactly one leftmost label),
// max_age in seconds (at most 31557600).  Unknown keys are ignored as the
// RFC asks; a policy missing a required field is an Error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::mtasts {

enum class Mode { Enforce, Testing, None };

struct Policy {
    Mode mode = Mode::None;
    std::vector<std::string> mx;  // lower case
    int64_t max_age = 0;
    bool matches(std::string_view host) const;  // RFC 8461 4.1
};

Result<std::string> parse_txt(std::string_view record);  // the id
Result<Policy> parse(std::string_view text);
std::string_view mode_name(Mode mode);

}  // namespace tern::mtasts
