// FETCH attributes (RFC 9051 6.4.5, RFC 3501 6.4.5, RFC 3516 BINARY,
// RFC 7162 CONDSTORE/QRESYNC modifiers): the parsed request a session
// answers from the mail store.  Macros (ALL, FAST, FULL) are expanded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/imap/parser.hpp"

namespace tern::imap {

struct BodySection {
    enum class Text { All, Header, HeaderFields, HeaderFieldsNot, Text, Mime };
    std::vector<uint32_t> part;       // "1.2" -> {1, 2}; empty = the whole message
    Text text = Text::All;
    std::vector<std::string> fields;  // HEADER.FIELDS (...), as given
    std::optional<uint64_t> origin;   // <origin.length>
    uint64_t length = 0;
};

struct FetchItem {
    enum class Kind {
        Envelope, Flags, InternalDate, Rfc822, Rfc822Header, Rfc822Size, Rfc822Text,
        Body,           // BODY without a section: the non-extensible structure
        BodyStructure,
        Uid, ModSeq,
        BodySection,    // BODY[...] / BODY.PEEK[...]
        Binary,         // BINARY[...] / BINARY.PEEK[...]
        BinarySize,     // BINARY.SIZE[...]
    };
    Kind kind;
    bool peek = false;
    BodySection section;

    // The name the response uses: "BODY[1.HEADER.FIELDS (From)]<0>",
    // "BINARY[2]", "RFC822.SIZE" (PEEK never appears; a partial shows its origin).
    std::string response_name() const;
};

struct FetchRequest {
    std::vector<FetchItem> items;
    std::optional<uint64_t> changed_since;  // (CHANGEDSINCE n)
    bool vanished = false;                  // (VANISHED), UID FETCH with QRESYNC only

    bool has(FetchItem::Kind kind) const;
    // Whether answering marks messages \Seen (BODY[...] without PEEK, RFC822, RFC822.TEXT, BINARY[...]).
    bool sets_seen() const;
};

// Parses what follows "FETCH <set> ": a macro, one attribute or a list, then
// the optional modifier list.  Fails the parser on bad syntax.
std::optional<FetchRequest> parse_fetch(Parser& p);

}  // namespace tern::imap
