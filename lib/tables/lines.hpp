// The lines of a table's source text (aliases, users, domains, sender
// logins), numbered from 1 for diagnostics ("file:line: ...").  Lines end
// at LF; the last one need not.
#pragma once

#include <string_view>

namespace tern::tables {

template <class Each>  // void(std::string_view line, int line_no)
void for_each_line(std::string_view text, Each each) {
    size_t pos = 0;
    int line_no = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        each(line, ++line_no);
    }
}

}  // namespace tern::tables
