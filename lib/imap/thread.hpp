// THREAD (RFC 5256): the ORDEREDSUBJECT and REFERENCES algorithms over the
// few header facts they need, and the base subject both SORT and THREAD
// compare.  Pure functions of their input, so they are tested without a
// mailbox; imapd gathers the facts from the store's header cache.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tern::imap {

// RFC 5256 2.1 base subject: RFC 2047 words decoded, white space collapsed,
// "Re:", "Fw:", "Fwd:" leaders, "[blob]" prefixes, "(fwd)" trailers and
// "[Fwd: ...]" wrappers removed, case folded.  `reply` tells whether any
// leader or trailer was removed (a reply or forward).
std::string base_subject(std::string_view raw_subject, bool* reply = nullptr);

// "<a@b> <c@d>" -> {"<a@b>", "<c@d>"} (comments and junk between ids skipped).
std::vector<std::string> message_ids(std::string_view header_value);

struct ThreadMessage {
    uint32_t id = 0;            // what the response lists: sequence number or UID
    uint32_t seq = 0;           // tie-breaker (RFC 5256: sort by sequence number)
    int64_t date = 0;           // sent date (Date: header, else internal date), UTC seconds
    std::string subject;        // raw Subject: value
    std::string message_id;     // raw Message-ID: value
    std::string references;     // raw References: value
    std::string in_reply_to;    // raw In-Reply-To: value
};

// The thread-list text of a THREAD response, e.g. "(2)(3 6 (4 23)(44 7 96))".
std::string thread_orderedsubject(const std::vector<ThreadMessage>& messages);
std::string thread_references(const std::vector<ThreadMessage>& messages);

}  // namespace tern::imap
