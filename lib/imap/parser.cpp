// IMAP command grammar building blocks (see parser.hpp).
#include "lib/imap/parser.hpp"

#include <cctype>
#include <cstdio>
#include <cstring>

namespace tern::imap {

namespace {

constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool is_ctl(unsigned char c) { return c < 0x20 || c == 0x7f; }

// Days since 1970-01-01 of a proleptic Gregorian date (no time zone games
// with timegm on every call; this is exact for all years IMAP can write).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

int days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return days[m - 1];
}

}  // namespace

bool is_atom_char(unsigned char c) {
    if (c >= 0x80 || is_ctl(c)) return false;
    switch (c) {
    case '(': case ')': case '{': case ' ': case '%': case '*': case '"': case '\\': case ']':
        return false;
    default:
        return true;
    }
}

bool is_astring_char(unsigned char c) { return is_atom_char(c) || c == ']'; }
bool is_list_char(unsigned char c) { return is_atom_char(c) || c == '%' || c == '*' || c == ']'; }
bool is_tag_char(unsigned char c) { return is_astring_char(c) && c != '+'; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

bool Parser::fail(std::string_view expected) {
    if (error_.empty()) {
        error_ = "expected ";
        error_ += expected;
        if (pos_ >= text_.size()) {
            error_ += " at end of command";
        } else {
            error_ += " at \"";
            // A short, printable excerpt: the error text goes back to the client.
            for (size_t i = pos_; i < text_.size() && i < pos_ + 20; ++i) {
                auto c = static_cast<unsigned char>(text_[i]);
                error_ += (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : static_cast<char>(c);
            }
            error_ += '"';
        }
    }
    pos_ = text_.size();  // nothing after an error parses
    return false;
}

bool Parser::peek_ci(std::string_view word) const {
    return text_.size() - pos_ >= word.size() && iequals(text_.substr(pos_, word.size()), word);
}

bool Parser::take(char c) {
    if (!ok() || !peek(c)) return false;
    ++pos_;
    return true;
}

bool Parser::expect(char c) {
    if (take(c)) return true;
    if (c == ' ') return fail("a space");
    char what[8];
    std::snprintf(what, sizeof what, "\"%c\"", c);
    return fail(what);
}

bool Parser::end() {
    if (!ok()) return false;
    if (!at_end()) return fail("end of command");
    return true;
}

std::optional<std::string_view> Parser::tag() {
    size_t start = pos_;
    while (ok() && pos_ < text_.size() && is_tag_char(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    if (!ok() || pos_ == start) {
        fail("a tag");
        return std::nullopt;
    }
    return text_.substr(start, pos_ - start);
}

std::optional<std::string_view> Parser::atom() {
    size_t start = pos_;
    while (ok() && pos_ < text_.size() && is_atom_char(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    if (!ok() || pos_ == start) {
        fail("an atom");
        return std::nullopt;
    }
    return text_.substr(start, pos_ - start);
}

std::optional<std::string_view> Parser::keyword() {
    size_t start = pos_;
    while (ok() && pos_ < text_.size()) {
        char c = text_[pos_];
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') break;
        ++pos_;
    }
    if (!ok() || pos_ == start) {
        fail("a keyword");
        return std::nullopt;
    }
    return text_.substr(start, pos_ - start);
}

std::optional<std::string> Parser::quoted() {
    // Caller saw the opening quote.
    ++pos_;
    std::string out;
    while (pos_ < text_.size()) {
        auto c = static_cast<unsigned char>(text_[pos_]);
        if (c == '"') {
            ++pos_;
            return out;
        }
        if (c == '\\') {
            if (pos_ + 1 >= text_.size()) break;
            char next = text_[pos_ + 1];
            if (next != '"' && next != '\\') {
                fail("\\\" or \\\\ in a quoted string");
                return std::nullopt;
            }
            out += next;
            pos_ += 2;
            continue;
        }
        // 8-bit text is UTF-8 in IMAP4rev2 and with UTF8=ACCEPT; CR, LF and
        // NUL never appear in a quoted string.
        if (c == '\r' || c == '\n' || c == 0) {
            fail("a closing quote");
            return std::nullopt;
        }
        out += static_cast<char>(c);
        ++pos_;
    }
    fail("a closing quote");
    return std::nullopt;
}

std::optional<std::string> Parser::literal(bool binary) {
    // "{" number64 ["+"] "}" CRLF *CHAR8, or "~{" ... for literal8.
    if (take('~')) {
        if (!binary) {
            fail("a string (literal8 is only allowed in APPEND)");
            return std::nullopt;
        }
    }
    if (!expect('{')) return std::nullopt;
    auto size = number64();
    if (!size) return std::nullopt;
    take('+');
    if (!expect('}')) return std::nullopt;
    if (text_.substr(pos_, 2) != "\r\n") {
        fail("CRLF after a literal's size");
        return std::nullopt;
    }
    pos_ += 2;
    if (*size > text_.size() - pos_) {
        fail("the literal's data");
        return std::nullopt;
    }
    std::string out(text_.substr(pos_, static_cast<size_t>(*size)));
    if (!binary && out.find('\0') != std::string::npos) {
        fail("a literal without NUL bytes");
        return std::nullopt;
    }
    pos_ += static_cast<size_t>(*size);
    return out;
}

std::optional<std::string> Parser::string(bool binary) {
    if (!ok()) return std::nullopt;
    if (peek('"')) return quoted();
    if (peek('{') || peek('~')) return literal(binary);
    fail("a string");
    return std::nullopt;
}

std::optional<std::optional<std::string>> Parser::nstring() {
    if (peek_ci("NIL") && (pos_ + 3 >= text_.size() || !is_atom_char(static_cast<unsigned char>(text_[pos_ + 3])))) {
        pos_ += 3;
        return std::optional<std::string>{};
    }
    auto s = string();
    if (!s) return std::nullopt;
    return std::optional<std::string>{std::move(*s)};
}

std::optional<std::string> Parser::astring() {
    if (!ok()) return std::nullopt;
    if (peek('"') || peek('{')) return string();
    size_t start = pos_;
    while (pos_ < text_.size() && is_astring_char(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    if (pos_ == start) {
        fail("an atom or a string");
        return std::nullopt;
    }
    return std::string(text_.substr(start, pos_ - start));
}

std::optional<std::string> Parser::list_mailbox() {
    if (!ok()) return std::nullopt;
    if (peek('"') || peek('{')) return string();
    size_t start = pos_;
    while (pos_ < text_.size() && is_list_char(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    if (pos_ == start) {
        fail("a mailbox pattern");
        return std::nullopt;
    }
    return std::string(text_.substr(start, pos_ - start));
}

std::optional<uint64_t> Parser::number64() {
    if (!ok()) return std::nullopt;
    size_t start = pos_;
    uint64_t n = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        if (n > (INT64_MAX - 9) / 10) {
            fail("a number below 2^63");
            return std::nullopt;
        }
        n = n * 10 + static_cast<uint64_t>(text_[pos_] - '0');
        ++pos_;
    }
    if (pos_ == start) {
        fail("a number");
        return std::nullopt;
    }
    return n;
}

std::optional<uint32_t> Parser::number() {
    size_t start = pos_;
    auto n = number64();
    if (!n) return std::nullopt;
    if (*n > UINT32_MAX) {
        pos_ = start;
        fail("a number below 2^32");
        return std::nullopt;
    }
    return static_cast<uint32_t>(*n);
}

std::optional<uint32_t> Parser::nz_number() {
    size_t start = pos_;
    auto n = number();
    if (!n) return std::nullopt;
    if (*n == 0) {
        pos_ = start;
        fail("a non-zero number");
        return std::nullopt;
    }
    return n;
}

std::optional<std::string> Parser::flag() {
    if (!ok()) return std::nullopt;
    std::string out;
    if (take('\\')) {
        out = "\\";
        if (take('*')) return std::string("\\*");
    }
    auto a = atom();
    if (!a) return std::nullopt;
    out += *a;
    return out;
}

std::optional<std::vector<std::string>> Parser::flag_list() {
    if (!expect('(')) return std::nullopt;
    std::vector<std::string> flags;
    if (take(')')) return flags;
    while (true) {
        auto f = flag();
        if (!f) return std::nullopt;
        flags.push_back(std::move(*f));
        if (take(')')) return flags;
        if (!sp()) return std::nullopt;
    }
}

std::optional<time_t> Parser::date() {
    if (!ok()) return std::nullopt;
    bool quoted = take('"');
    // date-text = date-day "-" date-month "-" date-year; date-day = 1*2DIGIT
    size_t start = pos_;
    int day = 0, digits = 0;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_])) && digits < 2) {
        day = day * 10 + (text_[pos_++] - '0');
        ++digits;
    }
    int month = 0;
    if (digits > 0 && take('-') && text_.size() - pos_ >= 3) {
        for (int m = 0; m < 12; ++m)
            if (iequals(text_.substr(pos_, 3), kMonths[m])) month = m + 1;
        if (month) pos_ += 3;
    }
    int year = 0;
    if (month && take('-') && text_.size() - pos_ >= 4) {
        for (int i = 0; i < 4; ++i) {
            char c = text_[pos_ + static_cast<size_t>(i)];
            if (!std::isdigit(static_cast<unsigned char>(c))) { year = -1; break; }
            year = year * 10 + (c - '0');
        }
        if (year >= 0) pos_ += 4;
    }
    if (!month || year <= 0 || day < 1 || day > days_in_month(year, month) || (quoted && !take('"'))) {
        pos_ = start;
        fail("a date like 1-Feb-2024");
        return std::nullopt;
    }
    return static_cast<time_t>(days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400);
}

std::optional<DateTime> Parser::date_time() {
    if (!ok()) return std::nullopt;
    size_t start = pos_;
    // DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
    // date-day-fixed = (SP DIGIT) / 2DIGIT; time = 2DIGIT ":" 2DIGIT ":" 2DIGIT
    std::string_view t = text_.substr(pos_);
    auto bad = [&]() -> std::optional<DateTime> {
        pos_ = start;
        fail("a date-time like \"17-Jul-1996 02:44:25 -0700\"");
        return std::nullopt;
    };
    if (t.size() < 28 || t[0] != '"' || t[27] != '"') return bad();
    auto digit = [&](size_t i) { return std::isdigit(static_cast<unsigned char>(t[i])) ? t[i] - '0' : -1; };
    int d1 = t[1] == ' ' ? 0 : digit(1), d2 = digit(2);
    if (d1 < 0 || d2 < 0 || t[3] != '-' || t[7] != '-' || t[12] != ' ' || t[15] != ':' || t[18] != ':' ||
        t[21] != ' ' || (t[22] != '+' && t[22] != '-'))
        return bad();
    int day = d1 * 10 + d2, month = 0;
    for (int m = 0; m < 12; ++m)
        if (iequals(t.substr(4, 3), kMonths[m])) month = m + 1;
    int nums[9];
    const size_t at[9] = {8, 9, 10, 11, 13, 14, 16, 17, 19};
    for (int i = 0; i < 9; ++i) {
        nums[i] = digit(at[i]);
        if (nums[i] < 0) return bad();
    }
    int s1 = digit(20), z[4] = {digit(23), digit(24), digit(25), digit(26)};
    if (s1 < 0 || z[0] < 0 || z[1] < 0 || z[2] < 0 || z[3] < 0) return bad();
    int year = nums[0] * 1000 + nums[1] * 100 + nums[2] * 10 + nums[3];
    int hour = nums[4] * 10 + nums[5], minute = nums[6] * 10 + nums[7], second = nums[8] * 10 + s1;
    int zh = z[0] * 10 + z[1], zm = z[2] * 10 + z[3];
    if (!month || year < 1 || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 ||
        second > 60 || zm > 59)
        return bad();
    int zone = (zh * 60 + zm) * (t[22] == '-' ? -1 : 1);
    int64_t days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
    int64_t local = days * 86400 + hour * 3600 + minute * 60 + second;
    pos_ += 28;
    return DateTime{static_cast<time_t>(local - zone * 60), zone};
}

std::string format_date_time(time_t utc, int zone_minutes) {
    time_t local = utc + zone_minutes * 60;
    struct tm tm;
    gmtime_r(&local, &tm);
    int z = zone_minutes < 0 ? -zone_minutes : zone_minutes;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%02d-%s-%04d %02d:%02d:%02d %c%02d%02d", tm.tm_mday, kMonths[tm.tm_mon],
                  tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, zone_minutes < 0 ? '-' : '+', z / 60, z % 60);
    return buf;
}

}  // namespace tern::imap
