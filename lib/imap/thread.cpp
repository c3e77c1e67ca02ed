// THREAD algorithms of RFC 5256 (see thread.hpp).
#include "lib/imap/thread.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <unordered_map>

#include "lib/mime/header.hpp"
#include "lib/mime/search.hpp"

namespace tern::imap {

namespace {

bool ieq_prefix(std::string_view s, size_t at, std::string_view word) {
    return s.size() - at >= word.size() && mime::iequals(s.substr(at, word.size()), word);
}

void trim(std::string& s) {
    while (!s.empty() && s.back() == ' ') s.pop_back();
    size_t i = 0;
    while (i < s.size() && s[i] == ' ') ++i;
    s.erase(0, i);
}

// Length of a "[...]" blob (with following spaces) at s[i], 0 when none.
size_t blob_at(std::string_view s, size_t i) {
    if (i >= s.size() || s[i] != '[') return 0;
    size_t j = i + 1;
    while (j < s.size() && s[j] != ']' && s[j] != '[') ++j;
    if (j >= s.size() || s[j] != ']') return 0;
    ++j;
    while (j < s.size() && s[j] == ' ') ++j;
    return j - i;
}

}  // namespace

std::string base_subject(std::string_view raw, bool* reply) {
    std::string s;
    for (char c : mime::decode_words(raw)) {
        if (c == '\t' || c == '\r' || c == '\n') c = ' ';
        if (c == ' ' && (s.empty() || s.back() == ' ')) continue;
        s += c;
    }
    trim(s);
    bool was_reply = false;
    for (int guard = 0; guard < 1000; ++guard) {
        bool changed = false;
        // (2) subj-trailer: "(fwd)" at the end
        while (s.size() >= 5 && mime::iequals(std::string_view(s).substr(s.size() - 5), "(fwd)")) {
            s.resize(s.size() - 5);
            trim(s);
            was_reply = changed = true;
        }
        // (3) subj-leader: *subj-blob subj-refwd, repeated
        size_t i = 0;
        while (size_t b = blob_at(s, i)) i += b;
        size_t k = std::string::npos;
        if (ieq_prefix(s, i, "re")) k = i + 2;
        else if (ieq_prefix(s, i, "fwd")) k = i + 3;
        else if (ieq_prefix(s, i, "fw")) k = i + 2;
        if (k != std::string::npos) {
            while (k < s.size() && s[k] == ' ') ++k;
            k += blob_at(s, k);
            if (k < s.size() && s[k] == ':') {
                s.erase(0, k + 1);
                trim(s);
                was_reply = true;
                continue;
            }
        }
        // (4) a leading blob goes when something remains after it
        size_t b = blob_at(s, 0);
        if (b && b < s.size()) {
            s.erase(0, b);
            trim(s);
            changed = true;
        }
        // (6) "[fwd:" ... "]"
        if (!changed && s.size() >= 6 && ieq_prefix(s, 0, "[fwd:") && s.back() == ']') {
            s = s.substr(5, s.size() - 6);
            trim(s);
            was_reply = changed = true;
        }
        if (!changed) break;
    }
    if (reply) *reply = was_reply;
    return mime::fold_case(s);
}

std::vector<std::string> message_ids(std::string_view v) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < v.size() && out.size() < 1000) {
        size_t open = v.find('<', i);
        if (open == std::string_view::npos) break;
        size_t close = v.find('>', open + 1);
        if (close == std::string_view::npos) break;
        std::string id;
        for (size_t j = open; j <= close; ++j)
            if (v[j] != ' ' && v[j] != '\t' && v[j] != '\r' && v[j] != '\n') id += v[j];
        if (id.size() > 2 && id.find('<', 1) == std::string::npos) out.push_back(std::move(id));
        i = close + 1;
    }
    return out;
}

namespace {

struct Node {
    const ThreadMessage* msg = nullptr;
    Node* parent = nullptr;
    std::vector<Node*> children;
    int64_t sort_date = 0;
    uint32_t sort_seq = 0;
};

void print_members(const Node* n, std::string& out);

void print_list(const Node* n, std::string& out) {
    out += '(';
    print_members(n, out);
    out += ')';
}

void print_members(const Node* n, std::string& out) {
    if (n->msg) out += std::to_string(n->msg->id);
    if (n->children.size() == 1) {
        if (n->msg) out += ' ';
        print_members(n->children[0], out);
    } else if (n->children.size() > 1) {
        if (n->msg) out += ' ';
        for (const Node* c : n->children) print_list(c, out);
    }
}

bool is_ancestor(const Node* maybe_ancestor, const Node* n) {
    for (int guard = 0; n && guard < 100000; n = n->parent, ++guard)
        if (n == maybe_ancestor) return true;
    return false;
}

void unlink(Node* n) {
    if (!n->parent) return;
    auto& sib = n->parent->children;
    sib.erase(std::remove(sib.begin(), sib.end(), n), sib.end());
    n->parent = nullptr;
}

void link(Node* parent, Node* child) {
    unlink(child);
    child->parent = parent;
    parent->children.push_back(child);
}

// Sort children recursively by date (a dummy takes its first child's),
// ties by sequence number (RFC 5256 REFERENCES step 6).
void sort_tree(std::vector<Node*>& level) {
    for (Node* n : level) {
        sort_tree(n->children);
        if (n->msg) {
            n->sort_date = n->msg->date;
            n->sort_seq = n->msg->seq;
        } else if (!n->children.empty()) {
            n->sort_date = n->children[0]->sort_date;
            n->sort_seq = n->children[0]->sort_seq;
        }
    }
    std::stable_sort(level.begin(), level.end(), [](const Node* a, const Node* b) {
        if (a->sort_date != b->sort_date) return a->sort_date < b->sort_date;
        return a->sort_seq < b->sort_seq;
    });
}

// Removes empty containers (REFERENCES step 4); returns the new level.
std::vector<Node*> prune(const std::vector<Node*>& level, bool root) {
    std::vector<Node*> out;
    for (Node* n : level) {
        n->children = prune(n->children, false);
        for (Node* c : n->children) c->parent = n;
        if (n->msg) {
            out.push_back(n);
        } else if (n->children.empty()) {
            continue;
        } else if (!root || n->children.size() == 1) {
            for (Node* c : n->children) out.push_back(c);  // promote
        } else {
            out.push_back(n);
        }
    }
    return out;
}

}  // namespace

std::string thread_orderedsubject(const std::vector<ThreadMessage>& messages) {
    std::vector<std::pair<std::string, const ThreadMessage*>> sorted;
    for (const auto& m : messages) sorted.emplace_back(base_subject(m.subject), &m);
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
        if (a.first != b.first) return a.first < b.first;
        if (a.second->date != b.second->date) return a.second->date < b.second->date;
        return a.second->seq < b.second->seq;
    });
    std::vector<std::vector<const ThreadMessage*>> threads;
    for (size_t i = 0; i < sorted.size(); ++i) {
        if (i == 0 || sorted[i].first != sorted[i - 1].first) threads.emplace_back();
        threads.back().push_back(sorted[i].second);
    }
    std::stable_sort(threads.begin(), threads.end(), [](const auto& a, const auto& b) {
        if (a[0]->date != b[0]->date) return a[0]->date < b[0]->date;
        return a[0]->seq < b[0]->seq;
    });
    std::string out;
    for (const auto& t : threads) {
        out += '(' + std::to_string(t[0]->id);
        if (t.size() == 2) out += ' ' + std::to_string(t[1]->id);
        else if (t.size() > 2) {
            out += ' ';
            for (size_t i = 1; i < t.size(); ++i) out += '(' + std::to_string(t[i]->id) + ')';
        }
        out += ')';
    }
    return out;
}

std::string thread_references(const std::vector<ThreadMessage>& messages) {
    std::vector<std::unique_ptr<Node>> pool;
    std::unordered_map<std::string, Node*> by_id;
    auto node_for = [&](const std::string& id) {
        auto it = by_id.find(id);
        if (it != by_id.end()) return it->second;
        pool.push_back(std::make_unique<Node>());
        by_id[id] = pool.back().get();
        return pool.back().get();
    };
    // Step 1: containers and links.
    for (const auto& m : messages) {
        auto own = message_ids(m.message_id);
        Node* self = nullptr;
        if (!own.empty()) {
            self = node_for(own[0]);
            if (self->msg) self = nullptr;  // duplicate Message-ID: treated as unique
        }
        if (!self) {
            pool.push_back(std::make_unique<Node>());
            self = pool.back().get();
        }
        self->msg = &m;
        auto refs = message_ids(m.references);
        if (refs.empty()) refs = message_ids(m.in_reply_to);
        Node* prev = nullptr;
        for (const auto& r : refs) {
            Node* n = node_for(r);
            if (prev && !n->parent && !is_ancestor(n, prev) && n != prev) link(prev, n);
            prev = n;
        }
        // The message's own references decide its parent (1C).
        if (prev && prev != self && !is_ancestor(self, prev)) link(prev, self);
        else if (!prev) unlink(self);
    }
    // Step 2: the root set.
    std::vector<Node*> roots;
    for (const auto& n : pool)
        if (!n->parent) roots.push_back(n.get());
    // Step 4: prune empty containers.
    roots = prune(roots, true);
    for (Node* r : roots) r->parent = nullptr;
    // Step 5: group the root set by base subject.
    auto subject_of = [](const Node* n, bool* reply) -> std::string {
        const Node* m = n->msg ? n : (n->children.empty() ? nullptr : n->children[0]);
        if (!m || !m->msg) return std::string();
        return base_subject(m->msg->subject, reply);
    };
    std::map<std::string, Node*> table;
    for (Node* r : roots) {
        bool reply = false;
        std::string s = subject_of(r, &reply);
        if (s.empty()) continue;
        auto it = table.find(s);
        if (it == table.end()) {
            table[s] = r;
            continue;
        }
        bool cur_reply = false;
        subject_of(it->second, &cur_reply);
        if ((!r->msg && it->second->msg) || (it->second->msg && cur_reply && !reply)) it->second = r;
    }
    std::vector<Node*> grouped = roots;
    auto drop = [&](Node* n) { grouped.erase(std::remove(grouped.begin(), grouped.end(), n), grouped.end()); };
    for (Node* r : roots) {
        if (r->parent) continue;  // already merged under another root
        bool reply = false;
        std::string s = subject_of(r, &reply);
        auto it = s.empty() ? table.end() : table.find(s);
        if (it == table.end() || it->second == r) continue;
        Node* t = it->second;
        bool t_reply = false;
        subject_of(t, &t_reply);
        if (!t->msg && !r->msg) {
            for (Node* c : std::vector<Node*>(r->children)) link(t, c);
            drop(r);
        } else if (!t->msg) {
            link(t, r);
            drop(r);
        } else if (!r->msg) {
            link(r, t);
            drop(t);
            it->second = r;
        } else if (!t_reply && reply) {
            link(t, r);
            drop(r);
        } else {
            pool.push_back(std::make_unique<Node>());
            Node* dummy = pool.back().get();
            std::replace(grouped.begin(), grouped.end(), t, dummy);
            link(dummy, t);
            link(dummy, r);
            drop(r);
            it->second = dummy;
        }
    }
    // Step 6: sort, then print.
    sort_tree(grouped);
    std::string out;
    for (const Node* r : grouped) print_list(r, out);
    return out;
}

}  // namespace tern::imap
