// IMAP command framing and literal admission (see reader.hpp).
#include "lib/imap/reader.hpp"

#include <algorithm>

#include "lib/imap/parser.hpp"

namespace tern::imap {

bool literal_suffix(std::string_view line, uint64_t& size, bool& non_sync) {
    if (line.empty() || line.back() != '}') return false;
    size_t open = line.rfind('{');
    if (open == std::string_view::npos) return false;
    std::string_view inner = line.substr(open + 1, line.size() - open - 2);
    non_sync = !inner.empty() && inner.back() == '+';
    if (non_sync) inner.remove_suffix(1);
    if (inner.empty() || inner.size() > 19) return false;
    uint64_t n = 0;
    for (char c : inner) {
        if (c < '0' || c > '9') return false;
        n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    size = n;
    return true;
}

namespace {

// The tag and whether the command is APPEND, from the start of a first line.
void first_words(std::string_view line, std::string& tag, bool& append) {
    size_t i = 0;
    while (i < line.size() && i < 64 && is_tag_char(static_cast<unsigned char>(line[i]))) ++i;
    tag = (i > 0 && (i == line.size() || line[i] == ' ')) ? std::string(line.substr(0, i)) : "*";
    append = false;
    if (i < line.size() && line[i] == ' ') {
        std::string_view name = line.substr(i + 1, 7);
        append = name.size() >= 6 && iequals(name.substr(0, 6), "APPEND") && (name.size() == 6 || name[6] == ' ');
    }
}

}  // namespace

size_t CommandReader::wanted() const {
    if (literal_left_ > 0) return static_cast<size_t>(std::min<uint64_t>(literal_left_, SIZE_MAX / 2));
    return limits_.line_max + 2;
}

void CommandReader::reset_command() {
    command_.clear();
    literal_left_ = 0;
    first_line_ = true;
}

CommandReader::Event CommandReader::feed(std::string_view input, size_t& consumed) {
    consumed = 0;
    if (delivered_) {
        delivered_ = false;
        reset_command();
    }
    while (true) {
        if (literal_left_ > 0) {
            size_t take = static_cast<size_t>(std::min<uint64_t>(literal_left_, input.size() - consumed));
            command_.append(input.substr(consumed, take));
            consumed += take;
            literal_left_ -= take;
            if (literal_left_ > 0) return Event::NeedMore;
            continue;  // the command goes on after the literal
        }
        std::string_view rest = input.substr(consumed);
        size_t lf = rest.find('\n');
        if (lf == std::string_view::npos) {
            if (skipping_) {
                // Keep only the end of the skipped line: it decides whether a
                // literal follows (then the stream is lost).
                skip_tail_.append(rest);
                if (skip_tail_.size() > 32) skip_tail_.erase(0, skip_tail_.size() - 32);
                consumed = input.size();
                return Event::NeedMore;
            }
            if (rest.size() > limits_.line_max) {
                if (first_line_) first_words(rest, tag_, append_);
                skipping_ = true;
                skip_tail_.assign(rest.substr(rest.size() - std::min<size_t>(rest.size(), 32)));
                consumed = input.size();
                reset_command();
                return Event::LineTooLong;
            }
            return Event::NeedMore;
        }
        std::string_view line = rest.substr(0, lf);
        consumed += lf + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (skipping_) {
            skipping_ = false;
            skip_tail_.append(line);
            uint64_t size;
            bool non_sync;
            bool lost = literal_suffix(skip_tail_, size, non_sync) && non_sync;
            skip_tail_.clear();
            if (lost) {
                error_ = "a literal followed a line that was too long";
                return Event::Fatal;
            }
            continue;
        }
        Event e = on_line(line);
        if (e != Event::NeedMore) return e;
    }
}

CommandReader::Event CommandReader::on_line(std::string_view line) {
    if (raw_line_) {
        raw_line_ = false;
        command_.assign(line);
        delivered_ = true;
        return Event::RawLine;
    }
    if (first_line_) {
        if (line.empty()) return Event::NeedMore;  // a stray empty line: ignored
        first_words(line, tag_, append_);
        first_line_ = false;
    }
    uint64_t size = 0;
    bool non_sync = false;
    bool has_literal = literal_suffix(line, size, non_sync);
    uint64_t total_max = append_ ? limits_.append_total_max : limits_.command_max;
    if (line.size() > limits_.line_max || command_.size() + line.size() > total_max) {
        reset_command();
        if (has_literal && non_sync) {
            error_ = "a command too long, with a literal following";
            return Event::Fatal;
        }
        return Event::LineTooLong;
    }
    if (!has_literal) {
        command_.append(line);
        delivered_ = true;
        return Event::Command;
    }
    uint64_t literal_max = append_ ? limits_.append_max : limits_.command_max;
    bool fits = size <= literal_max && command_.size() + line.size() + 2 + size <= total_max;
    if (non_sync && (!fits || size > limits_.nonsync_max)) {
        refused_size_ = size;
        reset_command();
        error_ = "non-synchronizing literal of " + std::to_string(size) +
                 " bytes refused (LITERAL- allows 4096 bytes; larger ones must be synchronizing)";
        return Event::Fatal;
    }
    if (!fits) {
        refused_size_ = size;
        reset_command();
        return Event::TooBig;
    }
    command_.append(line);
    command_.append("\r\n");
    literal_left_ = size;
    return non_sync ? Event::NeedMore : Event::Continue;
}

}  // namespace tern::imap
