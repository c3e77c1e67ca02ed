// Fuzz target: POP3 command lines (lib/pop3/command) and the RETR/TOP
// encoder (lib/pop3/response) on the same bytes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/pop3/command.hpp"
#include "lib/pop3/response.hpp"

using namespace tern::pop3;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view line(reinterpret_cast<const char*>(data), size);
    auto cmd = parse_command(line);
    if (cmd) {
        if (cmd->keyword.size() < 3 || cmd->keyword.size() > 4) std::abort();
        if (cmd->args.size() > kMaxArguments) std::abort();
        for (auto a : cmd->args) {
            if (a.empty() || a.find(' ') != std::string_view::npos) std::abort();
            if (a.data() < line.data() || a.data() + a.size() > line.data() + line.size()) std::abort();
            if (auto n = message_number(a); n && (*n == 0 || *n > 0x7fffffffu)) std::abort();
        }
        (void)check_arguments(*cmd);
    } else if (cmd.message().empty()) {
        std::abort();
    }
    // Responses never split, whatever the text.
    std::string r = err("SYS/TEMP", line);
    if (r.size() > kMaxResponseLine || r.find('\n') != r.size() - 1) std::abort();

    // Encoding: output lines end in CRLF, none is a lone ".", the same with
    // any split of the input, and TOP's output is a prefix of RETR's.
    std::string whole, split, top;
    MultilineEncoder a, b, t(size % 5);
    a.feed(line, whole);
    a.finish(whole);
    size_t cut = size ? data[0] % size : 0;
    b.feed(line.substr(0, cut), split);
    b.feed(line.substr(cut), split);
    b.finish(split);
    if (whole != split) std::abort();
    t.feed(line, top);
    t.finish(top);
    if (whole.compare(0, top.size() - 3, top, 0, top.size() - 3) != 0) std::abort();
    for (size_t i = 1; i < whole.size(); ++i)
        if (whole[i] == '\n' && whole[i - 1] != '\r') std::abort();
    if (whole[0] == '\n') std::abort();
    if (whole.find("\r\n.\r\n") != whole.size() - 5 && whole != ".\r\n") std::abort();
    return 0;
}
