// sendmail(1) command-line parsing (see options.hpp).
#include "sendmail/options.hpp"

#include <cctype>
#include <cstring>
#include <string_view>

namespace tern::sendmail {

namespace {

// Splits "a@b, c@d" (sendmail takes comma-separated lists in one argument).
void add_recipients(std::vector<std::string>& out, std::string_view arg) {
    size_t pos = 0;
    while (pos <= arg.size()) {
        size_t comma = arg.find(',', pos);
        if (comma == std::string_view::npos) comma = arg.size();
        std::string_view item = arg.substr(pos, comma - pos);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (item.size() >= 2 && item.front() == '<' && item.back() == '>') item = item.substr(1, item.size() - 2);
        if (!item.empty()) out.emplace_back(item);
        pos = comma + 1;
    }
}

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

// RFC 3461 4.1: NEVER alone, or any of SUCCESS, FAILURE, DELAY.
Result<uint8_t> parse_notify(const std::string& text) {
    uint8_t bits = 0;
    size_t pos = 0;
    std::string t = upper(text);
    while (pos <= t.size()) {
        size_t comma = t.find(',', pos);
        if (comma == std::string::npos) comma = t.size();
        std::string item = t.substr(pos, comma - pos);
        if (item == "NEVER") bits |= 8;
        else if (item == "SUCCESS") bits |= 1;
        else if (item == "FAILURE") bits |= 2;
        else if (item == "DELAY") bits |= 4;
        else return make_error("-N takes never, or a list of success, failure, delay");
        pos = comma + 1;
    }
    if ((bits & 8) && bits != 8) return make_error("-N: never cannot be combined with other values");
    return bits;
}

std::string strip_brackets(std::string s) {
    if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = s.substr(1, s.size() - 2);
    return s;
}

}  // namespace

std::string usage_text() {
    return "usage: sendmail [-t] [-i|-oi] [-f sender] [-F fullname] [-v] [-c dir] [--] [recipient...]\n"
           "       sendmail -bs        SMTP dialogue on standard input/output\n"
           "       sendmail -bp        list the mail queue (also: mailq)\n"
           "       sendmail -bi        rebuild the aliases database (also: newaliases)\n"
           "       sendmail -q         attempt delivery of all queued mail now\n"
           "The message is read from standard input; a line with a single '.' ends it\n"
           "unless -i or -oi is given.  -t takes recipients from To:, Cc: and Bcc:\n"
           "and removes Bcc:.  The configuration directory is -c DIR, else\n"
           "$TERN_CONFIG_DIR, else /etc/tern.\n";
}

Result<Options> parse_options(int argc, char** argv) {
    Options o;
    std::string_view prog = argc > 0 && argv[0] ? argv[0] : "sendmail";
    if (auto slash = prog.rfind('/'); slash != std::string_view::npos) prog.remove_prefix(slash + 1);
    if (prog == "mailq") o.mode = Mode::ListQueue;
    if (prog == "newaliases") o.mode = Mode::NewAliases;

    int i = 1;
    // An option's value is either glued ("-fuser") or the next argument.
    auto value = [&](std::string_view arg, const char* name) -> Result<std::string> {
        if (arg.size() > 2) return std::string(arg.substr(2));
        if (i + 1 >= argc) return make_error(std::string("option ") + name + " requires a value");
        return std::string(argv[++i]);
    };
    for (; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--") {
            ++i;
            break;
        }
        if (a.size() < 2 || a[0] != '-') break;
        if (a == "--help" || a == "-h") return make_error("help");
        switch (a[1]) {
        case 't': o.extract_recipients = true; break;
        case 'i': o.ignore_dots = true; break;
        case 'v': o.verbose = true; break;
        case 'f':
        case 'r': {
            auto v = value(a, "-f");
            if (!v) return v.error();
            o.sender = strip_brackets(*v);
            break;
        }
        case 'F': {
            auto v = value(a, "-F");
            if (!v) return v.error();
            o.fullname = *v;
            break;
        }
        case 'c':
        case 'C': {
            auto v = value(a, "-c");
            if (!v) return v.error();
            o.config_dir = *v;
            break;
        }
        case 'o':
            // -oi is the one -o option with meaning; -oXXX are sendmail 8
            // settings (-oem, -odb, -oQ...) that tern has no use for.
            if (a == "-oi") o.ignore_dots = true;
            break;
        case 'b':
            if (a == "-bm") o.mode = Mode::Deliver;
            else if (a == "-bs") o.mode = Mode::Smtp;
            else if (a == "-bp") o.mode = Mode::ListQueue;
            else if (a == "-bi") o.mode = Mode::NewAliases;
            else if (a == "-bd" || a == "-bD")
                return make_error("daemon mode is not supported: start tern with `mailctl start`");
            else
                return make_error("unsupported mode " + std::string(a));
            break;
        case 'q': o.mode = Mode::Flush; break;  // "-q30m": the interval is master's business
        case 'N': {
            auto v = value(a, "-N");
            if (!v) return v.error();
            auto bits = parse_notify(*v);
            if (!bits) return bits.error();
            o.notify = *bits;
            break;
        }
        case 'R': {
            auto v = value(a, "-R");
            if (!v) return v.error();
            std::string r = upper(*v);
            if (r != "FULL" && r != "HDRS") return make_error("-R takes full or hdrs");
            o.ret = r;
            break;
        }
        case 'V': {
            auto v = value(a, "-V");
            if (!v) return v.error();
            if (v->empty() || v->size() > 100 || v->find_first_of("\r\n\0 ") != std::string::npos)
                return make_error("-V: bad envelope id");
            o.envid = *v;
            break;
        }
        case 'B':
        case 'h':
        case 'L':
        case 'X':
        case 'O': {
            // Options with a value that tern accepts and ignores.
            std::string name(a.substr(0, 2));
            auto v = value(a, name.c_str());
            if (!v) return v.error();
            break;
        }
        case 'n':
        case 'U':
        case 'G':
        case 'm':
        case 'e':
        case 'A':
        case 'd':
            break;  // flags of sendmail 8, no meaning here
        default:
            return make_error("unknown option " + std::string(a.substr(0, 40)));
        }
    }
    for (; i < argc; ++i) add_recipients(o.recipients, argv[i]);
    return o;
}

}  // namespace tern::sendmail
