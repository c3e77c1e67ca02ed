// The Maildir++ Store: folders as ROOT/.Name.Sub directories, the
// subscriptions file, SPECIAL-USE attributes, quota.  See maildir_store.hpp.
#include "lib/mailstore/maildir_store.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <set>

#include "lib/core/errno_text.hpp"
#include "lib/mailstore/maildir_mailbox.hpp"
#include "lib/maildir/maildir.hpp"
#include "lib/maildir/quota.hpp"
#include "lib/sys/files.hpp"

namespace tern::mailstore {
namespace {

constexpr const char* kSubscriptions = "subscriptions";
constexpr const char* kSpecialUseFile = "tern-special-use";
constexpr const char* kIndexFile = "tern-index.lmdb";
constexpr size_t kMaxNameBytes = 512;

bool is_dir(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> read_lines(const std::string& path) {
    std::vector<std::string> out;
    auto data = sys::read_file(path, 4 << 20);
    if (!data) return out;
    size_t start = 0;
    while (start < data->size()) {
        size_t nl = data->find('\n', start);
        if (nl == std::string::npos) nl = data->size();
        if (nl > start) out.push_back(data->substr(start, nl - start));
        start = nl + 1;
    }
    return out;
}

Status write_lines(const std::string& path, const std::vector<std::string>& lines) {
    std::string data;
    for (const auto& l : lines) data += l + "\n";
    return sys::write_file_atomic(path, data, 0600);
}

SpecialUse parse_use(std::string_view s) {
    for (auto u : {SpecialUse::All, SpecialUse::Archive, SpecialUse::Drafts, SpecialUse::Flagged, SpecialUse::Junk,
                   SpecialUse::Sent, SpecialUse::Trash})
        if (special_use_name(u) == s) return u;
    return SpecialUse::None;
}

Status valid_name(const std::string& name) {
    if (name.empty()) return make_error("empty mailbox name");
    if (name.size() > kMaxNameBytes) return make_error("mailbox name too long");
    if (name.front() == kSeparator || name.back() == kSeparator ||
        name.find(std::string(2, kSeparator)) != std::string::npos)
        return make_error("mailbox name has an empty level");
    for (unsigned char c : name)
        if (c < 0x20 || c == 0x7f) return make_error("mailbox name has a control character");
    return {};
}

class MaildirStore final : public Store {
public:
    explicit MaildirStore(MaildirOptions options) : opt_(std::move(options)) {}

    Result<std::vector<FolderInfo>> list_folders() override;
    Result<bool> exists(const std::string& name) override;
    Status create_folder(const std::string& name, SpecialUse use) override;
    Status delete_folder(const std::string& name) override;
    Status rename_folder(const std::string& from, const std::string& to) override;
    Status subscribe(const std::string& name, bool on) override;
    Result<std::vector<std::string>> subscriptions() override;
    Status create_default_folders() override;
    Result<std::unique_ptr<Mailbox>> open(const std::string& name, bool read_only = false, bool claim_recent = false,
                                          const EarlyAnswer* early = nullptr) override;
    Result<MailboxStatus> status(const std::string& name) override;
    Result<QuotaUsage> quota_usage() override;
    Result<DeliveryStart> begin_delivery(const DeliveryOptions& options) override;
    void publish(std::span<MessageWriter* const> writers, std::vector<std::function<Status()>>& syncs) override {
        publish_messages(writers, syncs);
    }

private:
    // The index of a folder delivered to, kept open while this Store lives
    // (local-delivery keeps its Stores between deliveries: no LMDB open and
    // mmap per message).  Checked at every use (two stats, where all of
    // tmp/ new/ cur/ and the index file's identity took five):
    // a folder renamed or deleted and made again has a new index file,
    // which is opened instead; a missing new/ sends it through
    // open_index(), which makes the Maildir's directories again.  *cached:
    // whether it came from the cache, where tmp/ is not checked
    // (begin_delivery makes it again when the create in it fails).
    Result<std::shared_ptr<FolderIndex>> delivery_index(const std::string& name, bool* cached);

    static std::string folder_dir(const MaildirOptions& o, const std::string& name) {
        return name == kInbox ? o.root : o.root + "/" + folder_dir_name(name);
    }
    static std::string index_path(const MaildirOptions& o, const std::string& name) {
        if (o.index_dir.empty()) return folder_dir(o, name) + "/" + kIndexFile;
        return o.index_dir + "/" + (name == kInbox ? std::string("INBOX") : folder_dir_name(name)) + "." + kIndexFile;
    }
    // defer_creation: see FolderIndex::open.
    static Result<std::shared_ptr<FolderIndex>> open_index(const MaildirOptions& o, const std::string& raw_name,
                                                         bool defer_creation = false) {
        std::string name = canonical_name(raw_name);
        std::string dir = folder_dir(o, name);
        if (!is_dir(dir + "/cur")) return make_error("mailbox does not exist: " + name);
        if (auto s = maildir::ensure_maildir(dir); !s) return s.error();
        return FolderIndex::open(dir, index_path(o, name), defer_creation);
    }
    FolderContext context() const {
        FolderContext c;
        c.root = opt_.root;
        c.quota_bytes = opt_.quota_bytes;
        MaildirOptions o = opt_;
        c.open_folder = [o](const std::string& name) { return open_index(o, name); };
        return c;
    }
    std::map<std::string, SpecialUse> special_uses() const {
        std::map<std::string, SpecialUse> out;
        for (const auto& line : read_lines(opt_.root + "/" + kSpecialUseFile)) {
            size_t tab = line.find('\t');
            if (tab == std::string::npos) continue;
            SpecialUse u = parse_use(line.substr(0, tab));
            if (u != SpecialUse::None) out[line.substr(tab + 1)] = u;
        }
        return out;
    }
    Status save_special_uses(const std::map<std::string, SpecialUse>& uses) {
        std::vector<std::string> lines;
        for (const auto& [name, use] : uses) lines.push_back(std::string(special_use_name(use)) + "\t" + name);
        return write_lines(opt_.root + "/" + kSpecialUseFile, lines);
    }
    // Every folder directory below the root, decoded.
    std::vector<std::string> folder_names() const {
        std::vector<std::string> out;
        DIR* d = ::opendir(opt_.root.c_str());
        if (!d) return out;
        while (struct dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n.size() < 2 || n[0] != '.' || n == "..") continue;
            auto folder = folder_from_dir_name(n);
            if (folder && is_dir(opt_.root + "/" + n + "/cur")) out.push_back(*folder);
        }
        ::closedir(d);
        std::sort(out.begin(), out.end());
        return out;
    }

    MaildirOptions opt_;
    struct DeliveryIndex {
        std::shared_ptr<FolderIndex> index;
        dev_t dev;  // of its file when opened
        ino_t ino;
    };
    std::map<std::string, DeliveryIndex> delivery_indexes_;
};

Result<std::vector<FolderInfo>> MaildirStore::list_folders() {
    std::vector<std::string> names = folder_names();
    std::set<std::string> all(names.begin(), names.end());
    std::set<std::string> selectable = all;
    all.insert(std::string(kInbox));
    selectable.insert(std::string(kInbox));
    // Parents that exist only through their children (\Noselect, RFC 9051 6.3.9).
    for (const auto& n : names)
        for (size_t p = n.find(kSeparator); p != std::string::npos; p = n.find(kSeparator, p + 1)) all.insert(n.substr(0, p));
    auto uses = special_uses();
    auto subs = subscriptions();
    std::set<std::string> subscribed;
    if (subs) subscribed.insert(subs->begin(), subs->end());
    std::vector<FolderInfo> out;
    for (const auto& n : all) {
        FolderInfo f;
        f.name = n;
        f.selectable = selectable.count(n) > 0;
        f.subscribed = subscribed.count(n) > 0;
        auto u = uses.find(n);
        if (u != uses.end()) f.special_use = u->second;
        auto next = all.upper_bound(n);
        f.has_children = next != all.end() && next->size() > n.size() && next->compare(0, n.size(), n) == 0 &&
                         (*next)[n.size()] == kSeparator;
        // A child may sort after names like "n!" that share the prefix: look further.
        if (!f.has_children) {
            std::string prefix = n + kSeparator;
            auto it = all.lower_bound(prefix);
            f.has_children = it != all.end() && it->compare(0, prefix.size(), prefix) == 0;
        }
        out.push_back(std::move(f));
    }
    return out;
}

Result<bool> MaildirStore::exists(const std::string& raw) {
    std::string name = canonical_name(raw);
    if (name != kInbox)
        if (auto v = valid_name(name); !v) return false;
    return is_dir(folder_dir(opt_, name) + "/cur");
}

Status MaildirStore::create_folder(const std::string& raw, SpecialUse use) {
    std::string name = canonical_name(raw);
    if (auto v = valid_name(name); !v) return v;
    if (name == kInbox) return make_error("INBOX always exists");
    std::string dir = folder_dir(opt_, name);
    if (is_dir(dir + "/cur")) return make_error("mailbox already exists: " + name);
    if (auto s = maildir::ensure_maildir(dir); !s) return s;
    // Maildir++: marks a folder for deliverers that look (courier, maildrop).
    if (auto s = sys::write_file_atomic(dir + "/maildirfolder", "", 0600); !s) return s;
    if (use != SpecialUse::None) {
        auto uses = special_uses();
        uses[name] = use;
        if (auto s = save_special_uses(uses); !s) return s;
    }
    return {};
}

Status MaildirStore::delete_folder(const std::string& raw) {
    std::string name = canonical_name(raw);
    if (name == kInbox) return make_error("INBOX cannot be deleted");
    if (auto v = valid_name(name); !v) return v;
    std::string dir = folder_dir(opt_, name);
    if (!is_dir(dir + "/cur")) return make_error("mailbox does not exist: " + name);
    std::error_code ec;
    // Rename first so that a half-done removal never looks like a folder.
    std::string doomed = opt_.root + "/tern-deleting." + std::to_string(::getpid()) + "." + std::to_string(::time(nullptr));
    if (::rename(dir.c_str(), doomed.c_str()) != 0) return errno_error("rename " + dir);
    std::filesystem::remove_all(doomed, ec);
    if (ec) return make_error("remove " + doomed + ": " + ec.message());
    if (!opt_.index_dir.empty()) {
        std::string idx = index_path(opt_, name);
        ::unlink(idx.c_str());
        ::unlink((idx + "-lock").c_str());
    }
    auto uses = special_uses();
    if (uses.erase(name)) return save_special_uses(uses);
    return {};
}

Status MaildirStore::rename_folder(const std::string& raw_from, const std::string& raw_to) {
    std::string from = canonical_name(raw_from), to = canonical_name(raw_to);
    if (auto v = valid_name(to); !v) return v;
    if (to == kInbox) return make_error("cannot rename to INBOX");
    if (is_dir(folder_dir(opt_, to) + "/cur")) return make_error("mailbox already exists: " + to);
    if (to.size() > from.size() && to.compare(0, from.size(), from) == 0 && to[from.size()] == kSeparator)
        return make_error("cannot rename a mailbox into itself");
    if (from == kInbox) {
        // RFC 9051 6.3.6: move INBOX's messages into a new folder; INBOX stays, empty.
        if (auto s = create_folder(to, SpecialUse::None); !s) return s;
        auto inbox = open(std::string(kInbox), false);
        if (!inbox) return inbox.error();
        std::vector<uint32_t> uids;
        for (const auto& e : (*inbox)->view()) uids.push_back(e.uid);
        Changes gone;
        auto moved = (*inbox)->move(uids, to, gone);
        if (!moved) return moved.error();
        return {};
    }
    if (auto v = valid_name(from); !v) return v;
    std::vector<std::string> affected;
    for (const auto& n : folder_names())
        if (n == from || (n.size() > from.size() && n.compare(0, from.size(), from) == 0 && n[from.size()] == kSeparator))
            affected.push_back(n);
    if (affected.empty()) return make_error("mailbox does not exist: " + from);
    auto uses = special_uses();
    for (const auto& n : affected) {
        std::string target = to + n.substr(from.size());
        if (::rename(folder_dir(opt_, n).c_str(), folder_dir(opt_, target).c_str()) != 0)
            return errno_error("rename " + folder_dir(opt_, n));
        if (!opt_.index_dir.empty()) {
            ::rename(index_path(opt_, n).c_str(), index_path(opt_, target).c_str());
            ::rename((index_path(opt_, n) + "-lock").c_str(), (index_path(opt_, target) + "-lock").c_str());
        }
        auto u = uses.find(n);
        if (u != uses.end()) {
            SpecialUse use = u->second;
            uses.erase(u);
            uses[target] = use;
        }
    }
    return save_special_uses(uses);
}

Status MaildirStore::subscribe(const std::string& raw, bool on) {
    std::string name = canonical_name(raw);
    if (name != kInbox)
        if (auto v = valid_name(name); !v) return v;
    auto lines = read_lines(opt_.root + "/" + kSubscriptions);
    auto it = std::find(lines.begin(), lines.end(), name);
    if (on == (it != lines.end())) return {};
    if (on) lines.push_back(name);
    else lines.erase(it);
    return write_lines(opt_.root + "/" + kSubscriptions, lines);
}

Result<std::vector<std::string>> MaildirStore::subscriptions() {
    return read_lines(opt_.root + "/" + kSubscriptions);
}

Status MaildirStore::create_default_folders() {
    if (auto s = maildir::ensure_maildir(opt_.root); !s) return s;
    if (auto s = subscribe(std::string(kInbox), true); !s) return s;
    const std::pair<const char*, SpecialUse> defaults[] = {{"Drafts", SpecialUse::Drafts},
                                                           {"Sent", SpecialUse::Sent},
                                                           {"Trash", SpecialUse::Trash},
                                                           {"Junk", SpecialUse::Junk},
                                                           {"Archive", SpecialUse::Archive}};
    auto uses = special_uses();
    for (const auto& [name, use] : defaults) {
        bool taken = std::any_of(uses.begin(), uses.end(), [&](const auto& u) { return u.second == use; });
        if (!is_dir(folder_dir(opt_, name) + "/cur")) {
            if (auto s = create_folder(name, taken ? SpecialUse::None : use); !s) return s;
            if (auto s = subscribe(name, true); !s) return s;
        } else if (!taken && !uses.count(name)) {
            uses[name] = use;
            if (auto s = save_special_uses(uses); !s) return s;
        }
        uses = special_uses();
    }
    return {};
}

Result<std::unique_ptr<Mailbox>> MaildirStore::open(const std::string& raw, bool read_only, bool claim_recent,
                                                   const EarlyAnswer* early) {
    std::string name = canonical_name(raw);
    if (name != kInbox)
        if (auto v = valid_name(name); !v) return v.error();
    // An early answer (EarlyAnswer): from the build of a folder's first
    // SELECT, or, for an index this process has not open, from its file's
    // last commit, before the environment is opened.
    const EarlyAnswer* build_answer = nullptr;
    std::optional<IndexMeta> told;
    if (early) {
        std::string path = index_path(opt_, name);
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) build_answer = early;
        else if ((told = FolderIndex::answerable_header(folder_dir(opt_, name), path))) (*early)(answer_of(*told));
    }
    auto idx = open_index(opt_, name, build_answer != nullptr);
    if (!idx) return idx.error();
    auto mb = MaildirMailbox::open(std::move(*idx), name, read_only, context(), claim_recent && !read_only, build_answer,
                                   told ? &*told : nullptr);
    if (!mb) return mb.error();
    return std::unique_ptr<Mailbox>(std::move(*mb));
}

Result<MailboxStatus> MaildirStore::status(const std::string& name) {
    auto mb = open(name, true);
    if (!mb) return mb.error();
    return (*mb)->status();
}

Result<QuotaUsage> MaildirStore::quota_usage() {
    auto u = opt_.quota_bytes > 0 ? maildir::quota_usage(opt_.root, opt_.quota_bytes) : maildir::scan_usage(opt_.root);
    if (!u) return u.error();
    return QuotaUsage{u->bytes, u->messages, opt_.quota_bytes};
}

// A delivery's unique_name becomes the file's base name: one path
// component that Maildir's ',' and ':' fields cannot be confused with.
Status valid_unique_name(const std::string& name) {
    if (name.empty() || name.size() > 200 || name.front() == '.') return make_error("bad delivery name: " + name);
    for (unsigned char c : name)
        if (c < 0x21 || c == 0x7f || c == '/' || c == ',' || c == ':') return make_error("bad delivery name: " + name);
    return {};
}

Result<DeliveryStart> MaildirStore::begin_delivery(const DeliveryOptions& options) {
    std::string name = canonical_name(options.folder);
    if (!options.unique_name.empty())
        if (auto v = valid_unique_name(options.unique_name); !v) return v.error();
    if (name != kInbox && !is_dir(folder_dir(opt_, name) + "/cur"))
        if (auto s = create_folder(name, SpecialUse::None); !s) return s.error();
    DeliveryStart out;
    std::string dir = folder_dir(opt_, name);
    if (options.maybe_delivered && !options.unique_name.empty()) {
        // The earlier copy may be in new/ (an older deliverer, or moved
        // back by hand) or in cur/ with flags a reader set meanwhile.
        bool prefix = options.retry_match > 0 && options.retry_match < options.unique_name.size();
        auto earlier = maildir::find_named(dir, std::string_view(options.unique_name).substr(0, prefix ? options.retry_match : std::string::npos), prefix);
        if (!earlier) return earlier.error();
        if (!earlier->empty()) {
            // The earlier attempt may have died before syncing the directory.
            if (auto s = sys::fsync_dir(sys::dir_name(*earlier)); !s) return s.error();
            out.outcome = DeliveryStart::Outcome::AlreadyStored;
            return out;
        }
    }
    if (opt_.quota_bytes != 0) {
        auto fits = maildir::quota_allows(opt_.root, opt_.quota_bytes, options.expected_size);
        if (!fits) return fits.error();
        if (!*fits) {
            out.outcome = DeliveryStart::Outcome::OverQuota;
            return out;
        }
    }
    bool cached = false;
    auto idx = delivery_index(name, &cached);
    if (!idx) return idx.error();
    auto writer = begin_message(*idx, context(), options.unique_name, true);
    if (!writer && cached) {
        // tmp/ (or the folder) removed by hand since the index was cached.
        if (auto s = maildir::ensure_maildir((*idx)->dir()); !s) return s.error();
        writer = begin_message(std::move(*idx), context(), options.unique_name, true);
    }
    if (!writer) return writer.error();
    out.writer = std::move(*writer);
    return out;
}

Result<std::shared_ptr<FolderIndex>> MaildirStore::delivery_index(const std::string& name, bool* cached) {
    *cached = false;
    auto it = delivery_indexes_.find(name);
    if (it != delivery_indexes_.end()) {
        struct stat st {}, dir {};
        if (::stat(it->second.index->index_path().c_str(), &st) == 0 && st.st_dev == it->second.dev &&
            st.st_ino == it->second.ino && ::stat((it->second.index->dir() + "/new").c_str(), &dir) == 0) {
            *cached = true;
            return it->second.index;
        }
        delivery_indexes_.erase(it);
    }
    // A handful per user is plenty (INBOX and a few fileinto folders).
    if (delivery_indexes_.size() >= 8) delivery_indexes_.clear();
    // The Maildir may have been removed since this Store was opened: made
    // again, as opening the Store would.
    if (name == kInbox && opt_.create && !is_dir(opt_.root + "/cur"))
        if (auto s = maildir::ensure_maildir(opt_.root); !s) return s.error();
    auto idx = open_index(opt_, name);
    if (!idx) return idx.error();
    struct stat st {};
    int fd = -1;
    if (mdb_env_get_fd((*idx)->env().get(), &fd) == 0 && ::fstat(fd, &st) == 0)
        delivery_indexes_[name] = DeliveryIndex{*idx, st.st_dev, st.st_ino};
    return idx;
}

}  // namespace

Result<std::unique_ptr<Store>> open_maildir_store(const MaildirOptions& options) {
    if (options.root.empty() || options.root.front() != '/') return make_error("mail root must be an absolute path");
    if (!is_dir(options.root + "/cur")) {
        if (!options.create) return make_error("no Maildir at " + options.root);
        if (auto s = maildir::ensure_maildir(options.root); !s) return s.error();
    }
    return std::unique_ptr<Store>(new MaildirStore(options));
}

}  // namespace tern::mailstore
