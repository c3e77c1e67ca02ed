// Destination-keyed lookup tables and transport values (see domain_map.hpp).
#include "lib/tables/domain_map.hpp"

#include "lib/sys/files.hpp"
#include "lib/tables/address.hpp"

namespace tern::tables {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

bool is_code(std::string_view w) {
    // RFC 3463: class.subject.detail
    if (w.size() < 5 || (w[0] != '4' && w[0] != '5') || w[1] != '.') return false;
    int dots = 0;
    for (size_t i = 1; i < w.size(); ++i) {
        if (w[i] == '.') {
            if (w[i - 1] == '.') return false;
            ++dots;
        } else if (w[i] < '0' || w[i] > '9') {
            return false;
        }
    }
    return dots == 2 && w.back() != '.';
}

}  // namespace

Result<TableEntries> parse_domain_map(std::string_view text, std::string_view filename) {
    TableEntries out;
    int line_no = 0;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        ++line_no;
        line = trim(line);
        if (line.empty() || line.front() == '#') continue;
        size_t sp = line.find_first_of(" \t");
        if (sp == std::string_view::npos)
            return make_error(std::string(filename) + ":" + std::to_string(line_no) + ": a key without a value");
        out.emplace_back(lowercase(line.substr(0, sp)), std::string(trim(line.substr(sp))));
    }
    return out;
}

namespace {
Result<TableEntries> build_domain_map(const std::string& source) {
    auto text = sys::read_file(source);
    if (!text) return make_error(source + ": " + text.message());
    return parse_domain_map(*text, source);
}
}  // namespace

Status compile_domain_map(const std::string& path) { return compile_table(path, build_domain_map); }

Result<DomainMap> DomainMap::open(const std::string& path) {
    DomainMap m;
    if (path.empty()) return m;
    auto table = CompiledTable::open(path, build_domain_map);
    if (!table) return table.error();
    m.table_.emplace(std::move(*table));
    return m;
}

Status DomainMap::refresh() {
    if (!table_ || !table_->changed()) return {};
    return table_->refresh();
}

Result<std::optional<std::string>> DomainMap::lookup(std::string_view destination) const {
    if (!table_) return std::optional<std::string>();
    std::string key = lowercase(destination);
    while (!key.empty() && key.back() == '.') key.pop_back();
    auto exact = table_->get(key);
    if (!exact || *exact || key.front() == '[') return exact;
    for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1)) {
        auto parent = table_->get(key.substr(dot));
        if (!parent || *parent) return parent;
    }
    return table_->get("*");
}

Result<TransportEntry> parse_transport(std::string_view value) {
    value = trim(value);
    TransportEntry e;
    size_t colon = value.find(':');
    std::string_view kind = value.substr(0, colon);
    std::string_view rest = colon == std::string_view::npos ? std::string_view() : value.substr(colon + 1);
    if (kind == "smtp") {
        e.kind = TransportEntry::Kind::Smtp;
        e.nexthop = std::string(trim(rest));
        if (!e.nexthop.empty() && e.nexthop.front() == '[' && e.nexthop.find(']') == std::string::npos)
            return make_error("transport '" + std::string(value) + "': unbalanced [");
        return e;
    }
    if (kind == "local") {
        if (!trim(rest).empty()) return make_error("transport 'local' takes no next hop");
        e.kind = TransportEntry::Kind::Local;
        return e;
    }
    if (kind == "error") {
        e.kind = TransportEntry::Kind::Error;
        rest = trim(rest);
        std::string_view first = rest.substr(0, rest.find(' '));
        e.dsn = "5.0.0";
        if (is_code(first)) {
            e.dsn = std::string(first);
            rest = trim(rest.substr(first.size()));
        }
        e.text = rest.empty() ? "mail for this destination is refused" : std::string(rest);
        return e;
    }
    return make_error("unknown transport '" + std::string(value) + "' (smtp:[host]:port, local, error:text)");
}

}  // namespace tern::tables
