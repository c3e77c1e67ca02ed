// aliases(5) parsing, compiling and lookup: see aliases.hpp.
#include "lib/tables/aliases.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "lib/core/errno_text.hpp"
#include "lib/core/fd.hpp"
#include "lib/log/log.hpp"
#include "lib/sys/files.hpp"
#include "lib/tables/address.hpp"
#include "lib/tables/lines.hpp"

namespace tern::tables {
namespace {

constexpr size_t kMaxTableFile = 64 * 1024 * 1024;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// Removes surrounding double quotes and backslash escapes inside them.
std::string unquote(std::string_view s) {
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') {
        std::string out;
        for (size_t i = 1; i + 1 < s.size(); ++i) {
            if (s[i] == '\\' && i + 2 < s.size()) ++i;
            out += s[i];
        }
        return out;
    }
    return std::string(s);
}

void push_piece(std::string_view piece, std::vector<std::string>& out) {
    auto t = unquote(trim(piece));
    auto kept = trim(t);  // `" x "` is the target x
    if (!kept.empty()) out.emplace_back(kept);
}

// Splits at separator characters outside double quotes.  Returns false on an
// unterminated quote.
bool split_outside_quotes(std::string_view text, std::string_view separators,
                          std::vector<std::string>& out) {
    std::string current;
    bool quoted = false;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (quoted && c == '\\' && i + 1 < text.size()) {
            current += c;
            current += text[++i];
            continue;
        }
        if (c == '"') quoted = !quoted;
        if (!quoted && separators.find(c) != std::string_view::npos) {
            push_piece(current, out);
            current.clear();
            continue;
        }
        current += c;
    }
    if (quoted) return false;
    push_piece(current, out);
    return true;
}

bool has_control_chars(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 && c != '\t') return true;
    return false;
}

void parse_logical(std::string_view text, int line, std::string_view filename, AliasParse& out) {
    auto where = std::string(filename) + ":" + std::to_string(line) + ": ";
    // The name ends at the first ':' outside quotes.
    size_t colon = std::string_view::npos;
    bool quoted = false;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && quoted) { ++i; continue; }
        if (text[i] == '"') quoted = !quoted;
        else if (text[i] == ':' && !quoted) { colon = i; break; }
    }
    if (colon == std::string_view::npos) {
        out.diagnostics.push_back(where + "missing ':' after the alias name");
        return;
    }
    std::string name = lowercase(unquote(trim(text.substr(0, colon))));
    if (name.empty()) {
        out.diagnostics.push_back(where + "empty alias name");
        return;
    }
    if (has_control_chars(name) || name.find('\n') != std::string::npos) {
        out.diagnostics.push_back(where + "control character in alias name");
        return;
    }
    AliasEntry entry;
    entry.name = std::move(name);
    entry.line = line;
    if (!split_outside_quotes(text.substr(colon + 1), ",", entry.targets)) {
        out.diagnostics.push_back(where + "unterminated quote in the targets of '" + entry.name + "'");
        return;
    }
    for (const auto& t : entry.targets) {
        if (has_control_chars(t)) {
            out.diagnostics.push_back(where + "control character in a target of '" + entry.name + "'");
            return;
        }
        if (t.rfind(":include:", 0) == 0 && trim(std::string_view(t).substr(9)).empty()) {
            out.diagnostics.push_back(where + ":include: without a file name in '" + entry.name + "'");
            return;
        }
    }
    if (entry.targets.empty()) {
        out.diagnostics.push_back(where + "alias '" + entry.name + "' has no targets");
        return;
    }
    out.entries.push_back(std::move(entry));
}


Result<TableEntries> build_aliases(const std::string& path) {
    auto text = sys::read_file(path, kMaxTableFile);
    if (!text) return text.error();
    AliasParse parsed = parse_aliases(*text, path);
    for (const auto& d : parsed.diagnostics) log::warning("%s", d.c_str());
    TableEntries entries;
    std::set<std::string, std::less<>> seen;
    for (const auto& e : parsed.entries) {
        if (!seen.insert(e.name).second) {
            log::warning("%s:%d: duplicate alias '%s' ignored (the first one wins)", path.c_str(), e.line,
                         e.name.c_str());
            continue;
        }
        std::string value;
        for (const auto& t : e.targets) {
            if (!value.empty()) value += '\n';
            value += t;
        }
        entries.emplace_back(e.name, std::move(value));
    }
    return entries;
}

}  // namespace

AliasTarget classify_target(std::string_view target) {
    AliasTarget t;
    target = trim(target);
    if (target.rfind(":include:", 0) == 0) {
        t.kind = TargetKind::Include;
        t.value = std::string(trim(target.substr(9)));
    } else if (!target.empty() && target.front() == '|') {
        t.kind = TargetKind::Command;
        t.value = std::string(trim(target.substr(1)));
    } else if (!target.empty() && target.front() == '/') {
        t.kind = TargetKind::File;
        t.value = std::string(target);
    } else if (!target.empty() && target.front() == '\\') {
        t.kind = TargetKind::Address;
        t.value = std::string(target.substr(1));
        t.no_expand = true;
    } else {
        t.value = std::string(target);
    }
    return t;
}

AliasParse parse_aliases(std::string_view text, std::string_view filename) {
    AliasParse out;
    std::string logical;
    int logical_line = 0;
    auto flush = [&] {
        if (!logical.empty()) parse_logical(logical, logical_line, filename, out);
        logical.clear();
    };
    for_each_line(text, [&](std::string_view line, int line_no) {
        std::string_view t = trim(line);
        if (t.empty() || t.front() == '#') return;  // comments do not end an entry (Postfix)
        if (line.front() == ' ' || line.front() == '\t') {
            if (logical.empty()) {
                out.diagnostics.push_back(std::string(filename) + ":" + std::to_string(line_no) +
                                          ": continuation line without an entry before it");
                return;
            }
            logical += ' ';
            logical += t;
            return;
        }
        flush();
        logical = std::string(t);
        logical_line = line_no;
    });
    flush();
    return out;
}

std::vector<std::string> parse_target_list(std::string_view text, std::vector<std::string>* diagnostics) {
    std::vector<std::string> targets;
    for_each_line(text, [&](std::string_view raw, int line_no) {
        std::string_view line = trim(raw);
        if (line.empty() || line.front() == '#') return;
        std::vector<std::string> pieces;
        if (!split_outside_quotes(line, ",", pieces)) {
            if (diagnostics) diagnostics->push_back("line " + std::to_string(line_no) + ": unterminated quote");
            return;
        }
        for (auto& p : pieces) {
            if (has_control_chars(p)) {
                if (diagnostics)
                    diagnostics->push_back("line " + std::to_string(line_no) + ": control character in target");
                continue;
            }
            targets.push_back(std::move(p));
        }
    });
    return targets;
}

Status compile_aliases(const std::string& path) { return compile_table(path, build_aliases); }

Result<AliasTable> AliasTable::open(const std::string& path) {
    auto table = CompiledTable::open(path, build_aliases);
    if (!table) return table.error();
    return AliasTable(std::move(*table));
}

Result<std::optional<std::vector<AliasTarget>>> AliasTable::lookup(std::string_view name) const {
    auto value = table_.get(lowercase(name));
    if (!value) return value.error();
    if (!*value) return std::optional<std::vector<AliasTarget>>{};
    std::vector<AliasTarget> targets;
    std::string_view v = **value;
    size_t pos = 0;
    while (pos <= v.size()) {
        size_t end = v.find('\n', pos);
        if (end == std::string_view::npos) end = v.size();
        if (end > pos) targets.push_back(classify_target(v.substr(pos, end - pos)));
        pos = end + 1;
    }
    return std::optional<std::vector<AliasTarget>>(std::move(targets));
}

}  // namespace tern::tables
