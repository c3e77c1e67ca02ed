// The IMAP command grammar's building blocks (RFC 9051 section 9, RFC 3501
// section 9): a Parser walks one complete command -- the lines and the
// literal data between them exactly as CommandReader assembled them -- and
// hands out atoms, astrings, quoted strings, literals ({n}, {n+} and the
// literal8 ~{n} of RFC 3516), numbers, flags, dates and lists.  It never
// copies the command; strings come back as std::string only when a quoted
// string had to be unescaped or a literal was taken.
//
// The first error sticks: every later call fails, error() says what was
// expected and where, so a command handler can parse its arguments in a
// straight line and answer "BAD <error>" once at the end.
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::imap {

// Character classes of RFC 9051 section 9 (formal syntax).
bool is_atom_char(unsigned char c);     // ATOM-CHAR
bool is_astring_char(unsigned char c);  // ASTRING-CHAR = ATOM-CHAR / "]"
bool is_list_char(unsigned char c);     // list-char = ATOM-CHAR / "%" / "*" / "]"
bool is_tag_char(unsigned char c);      // ASTRING-CHAR except "+"

// A date-time as IMAP writes it ("17-Jul-1996 02:44:25 -0700"): the UTC
// instant and the zone offset it was written with.
struct DateTime {
    time_t utc = 0;
    int zone_minutes = 0;  // -0700 -> -420
};

class Parser {
public:
    explicit Parser(std::string_view text) : text_(text) {}

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }
    // Records the first error (with the position) and returns false.
    bool fail(std::string_view expected);
    bool at_end() const { return pos_ >= text_.size(); }
    size_t pos() const { return pos_; }
    std::string_view rest() const { return text_.substr(pos_); }

    bool peek(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
    bool peek_ci(std::string_view word) const;  // case-insensitive prefix
    bool take(char c);                          // consumes c when present
    bool expect(char c);                        // take(c) or fail
    bool sp() { return expect(' '); }
    bool end();  // fails unless all input is consumed

    // tag: 1*<ASTRING-CHAR except "+">
    std::optional<std::string_view> tag();
    // atom: 1*ATOM-CHAR
    std::optional<std::string_view> atom();
    // A word of the grammar (command name, search key, fetch item): letters,
    // digits, ".", "-" and "_" (never "[" so BODY[ stops before the bracket).
    std::optional<std::string_view> keyword();
    // astring = 1*ASTRING-CHAR / string
    std::optional<std::string> astring();
    // string = quoted / literal; binary=true accepts literal8 and NUL bytes.
    std::optional<std::string> string(bool binary = false);
    // nstring = string / NIL
    std::optional<std::optional<std::string>> nstring();
    // list-mailbox = 1*list-char / string
    std::optional<std::string> list_mailbox();
    // number (32 bit), nz-number, number64 (63 bit, RFC 9051)
    std::optional<uint32_t> number();
    std::optional<uint32_t> nz_number();
    std::optional<uint64_t> number64();
    // flag: "\" atom (system flag or \* in PERMANENTFLAGS lists) / atom (keyword)
    std::optional<std::string> flag();
    // "(" [flag *(SP flag)] ")"
    std::optional<std::vector<std::string>> flag_list();
    // date = date-text / DQUOTE date-text DQUOTE; returns the UTC midnight.
    std::optional<time_t> date();
    // date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
    std::optional<DateTime> date_time();
    // Whether the next token is a literal8 (~{n}), for APPEND's BINARY form.
    bool peek_literal8() const { return peek('~'); }

private:
    std::optional<std::string> quoted();
    std::optional<std::string> literal(bool binary);

    std::string_view text_;
    size_t pos_ = 0;
    std::string error_;
};

// Case-insensitive ASCII comparison.
bool iequals(std::string_view a, std::string_view b);
std::string upper(std::string_view s);

// "17-Jul-1996 02:44:25 -0700" for INTERNALDATE responses.
std::string format_date_time(time_t utc, int zone_minutes);

}  // namespace tern::imap
