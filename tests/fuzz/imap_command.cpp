// Fuzz target: IMAP command framing (literal admission, overlong lines) and
// every argument parser of lib/imap: sequence sets, FETCH attributes,
// SEARCH/SORT/THREAD keys, dates, flags, modified UTF-7, the response writer.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/imap/fetch.hpp"
#include "lib/imap/mutf7.hpp"
#include "lib/imap/parser.hpp"
#include "lib/imap/reader.hpp"
#include "lib/imap/response.hpp"
#include "lib/imap/search.hpp"
#include "lib/imap/sequence.hpp"

using namespace tern::imap;

namespace {

void parse_arguments(std::string_view cmd) {
    Parser p(cmd);
    if (!p.tag() || !p.sp()) return;
    auto name = p.keyword();
    if (!name || !p.take(' ')) return;
    std::string n = upper(*name);
    if (n == "UID") {
        auto sub = p.keyword();
        if (!sub || !p.sp()) return;
        n = upper(*sub);
    }
    if (n == "FETCH" || n == "STORE" || n == "COPY") {
        auto set = SequenceSet::parse(p);
        if (!set || !p.sp()) return;
        auto r = set->resolve(1000);
        for (size_t i = 1; i < r.size(); ++i)
            if (r[i].lo <= r[i - 1].hi || r[i].lo > r[i].hi) std::abort();  // sorted, merged
        if (n == "FETCH") {
            auto f = parse_fetch(p);
            if (f) {
                if (f->items.empty()) std::abort();
                for (const auto& item : f->items) (void)item.response_name();
            }
        } else if (n == "STORE") {
            (void)p.flag_list();
        }
    } else if (n == "SEARCH") {
        (void)parse_search(p);
    } else if (n == "SORT") {
        (void)parse_sort(p);
    } else if (n == "THREAD") {
        (void)parse_thread(p);
    } else if (n == "APPEND") {
        auto mbox = p.astring();
        if (!mbox || !p.sp()) return;
        if (p.peek('(')) { if (!p.flag_list() || !p.sp()) return; }
        if (p.peek('"')) { if (!p.date_time() || !p.sp()) return; }
        (void)p.string(true);
    } else {
        while (p.ok() && !p.at_end()) {
            if (!p.astring()) break;
            p.take(' ');
        }
    }
    if (!p.ok() && p.error().empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    ReaderLimits limits;
    limits.line_max = 200;
    limits.command_max = 2000;
    limits.append_max = 3000;
    limits.append_total_max = 4000;
    CommandReader reader(limits);
    size_t off = 0;
    for (int guard = 0; guard < 10000 && off <= in.size(); ++guard) {
        size_t used = 0;
        auto e = reader.feed(in.substr(off), used);
        if (used > in.size() - off) std::abort();
        off += used;
        if (e == CommandReader::Event::Command) {
            if (reader.command().size() > limits.append_total_max + limits.line_max) std::abort();
            parse_arguments(reader.command());
        }
        if (e == CommandReader::Event::NeedMore || e == CommandReader::Event::Fatal) break;
    }
    // Modified UTF-7 must round-trip whatever it accepts.
    if (auto utf8 = mutf7_decode(in)) {
        auto back = mutf7_encode(*utf8);
        if (!back || *back != in) std::abort();
    }
    if (valid_utf8(in)) {
        auto m = mutf7_encode(in);
        if (!m || mutf7_decode(*m) != std::string(in)) std::abort();
    }
    // The writer never produces a quoted string the parser reads differently.
    std::string out;
    append_string(out, in);
    Parser back(out);
    auto s = back.string();
    if (in.find('\0') == std::string_view::npos && (!s || *s != in || !back.end())) std::abort();
    return 0;
}
