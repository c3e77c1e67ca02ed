// SEARCH, SORT and THREAD requests (RFC 9051 6.4.4, RFC 3501 6.4.4,
// RFC 4731 ESEARCH, RFC 5182 SEARCHRES, RFC 5256 SORT/THREAD, RFC 7162
// MODSEQ): the key tree a session evaluates against the mail store.
//
// Flag keys become Flag/NoFlag with the flag name (ANSWERED ->
// Flag "\Answered"); address and subject keys become Header with the field
// name, so the evaluator has fewer cases.  Nesting is bounded (kMaxDepth)
// so hostile input cannot exhaust the stack.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "lib/imap/parser.hpp"
#include "lib/imap/sequence.hpp"

namespace tern::imap {

struct SearchKey {
    enum class Kind {
        All, And, Or, Not,
        Sequence,     // a message sequence set
        Uid,          // UID <set>
        Flag, NoFlag, // system flag or keyword, by name
        New, Old, Recent,
        Larger, Smaller,
        Before, On, Since,              // internal date (day granularity)
        SentBefore, SentOn, SentSince,  // Date: header
        Header,       // HEADER field value (also FROM, TO, CC, BCC, SUBJECT)
        Body, Text,
        ModSeq,
    };
    Kind kind = Kind::All;
    std::string field;  // Header: field name; Flag/NoFlag: flag
    std::string value;  // Header/Body/Text: the string searched for
    uint64_t number = 0;  // Larger/Smaller/ModSeq
    time_t date = 0;      // dates: UTC midnight of the day
    SequenceSet set;
    std::vector<SearchKey> children;  // And: all; Or: two; Not: one
};

constexpr int kMaxSearchDepth = 64;

struct SearchReturn {
    bool given = false;  // RETURN (...) present: answer with ESEARCH
    bool min = false, max = false, all = false, count = false, save = false;
};

struct SearchRequest {
    SearchReturn ret;
    std::string charset;  // "" when absent; upper-cased
    SearchKey key;        // And of the top-level keys
};

// What follows "SEARCH ": [RETURN (...)] [CHARSET x] keys.
std::optional<SearchRequest> parse_search(Parser& p);

struct SortKey {
    enum class Field { Arrival, Cc, Date, From, Size, Subject, To, DisplayFrom, DisplayTo };
    Field field;
    bool reverse = false;
};

struct SortRequest {
    SearchReturn ret;
    std::vector<SortKey> keys;
    std::string charset;
    SearchKey key;
};

// What follows "SORT ": [RETURN (...)] (criteria) charset keys.
std::optional<SortRequest> parse_sort(Parser& p);

struct ThreadRequest {
    enum class Algorithm { OrderedSubject, References } algorithm;
    std::string charset;
    SearchKey key;
};

// What follows "THREAD ": algorithm charset keys.
std::optional<ThreadRequest> parse_thread(Parser& p);

}  // namespace tern::imap
