// The Maildir Mailbox: view, refresh, reads and flag/expunge/copy/move.
// See maildir_mailbox.hpp; appends are in message_writer.cpp.
#include "lib/mailstore/maildir_mailbox.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "lib/core/errno_text.hpp"
#include "lib/core/fd.hpp"
#include "lib/mailstore/maildir_names.hpp"
#include "lib/mailstore/message_bytes.hpp"
#include "lib/maildir/maildir.hpp"
#include "lib/maildir/quota.hpp"
#include "lib/mime/header.hpp"

namespace tern::mailstore {
namespace {

// A message's bytes (read or mapped: MessageBytes) and its open file.
class FileBody final : public MessageBody {
public:
    FileBody(Fd fd, MessageBytes bytes) : fd_(std::move(fd)), bytes_(std::move(bytes)) {}
    std::string_view bytes() const override { return bytes_.bytes(); }
    int fd() const override { return fd_.get(); }

private:
    Fd fd_;
    MessageBytes bytes_;
};

uint64_t keyword_mask(IndexMeta& m, const std::vector<std::string>& names, bool add, bool& full) {
    uint64_t mask = 0;
    for (const auto& k : names) {
        auto bit = FolderIndex::keyword_bit(m, k, add);
        if (bit) mask |= uint64_t{1} << *bit;
        else if (add) full = true;
    }
    return mask;
}

// A hard link of a message file into another folder's tmp/ (a copy when the
// folders are on different file systems).
Status link_into_tmp(const std::string& from, const std::string& tmp_path) {
    if (::link(from.c_str(), tmp_path.c_str()) == 0) return {};
    if (errno != EXDEV) return errno_error("link " + from + " to " + tmp_path);
    Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return errno_error("open " + from);
    Fd out(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!out) return errno_error("create " + tmp_path);
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(in.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            ::unlink(tmp_path.c_str());
            return errno_error("read " + from);
        }
        if (n == 0) break;
        if (::write(out.get(), buf, static_cast<size_t>(n)) != n) {
            ::unlink(tmp_path.c_str());
            return errno_error("write " + tmp_path);
        }
    }
    if (::fsync(out.get()) != 0) return errno_error("fsync " + tmp_path);
    return {};
}

// Reads records by ascending UID: steps the cursor forward when the next
// wanted UID is close (FETCH 1:* walks the whole database in order), seeks
// otherwise.
class UidCursor {
public:
    explicit UidCursor(lmdb::Cursor c) : cursor_(std::move(c)) {}
    Result<std::optional<std::string_view>> get(uint32_t uid) {
        if (positioned_ && at_ == uid) return std::optional<std::string_view>(value_);
        if (positioned_ && at_ < uid) {
            for (int step = 0; step < 8; ++step) {
                auto e = cursor_.next();
                if (!e) return e.error();
                if (!*e) {
                    positioned_ = false;
                    return std::optional<std::string_view>();
                }
                take(**e);
                if (at_ == uid) return std::optional<std::string_view>(value_);
                if (at_ > uid) return std::optional<std::string_view>();
            }
        }
        auto e = cursor_.seek(uid_key(uid));
        if (!e) return e.error();
        if (!*e) {
            positioned_ = false;
            return std::optional<std::string_view>();
        }
        take(**e);
        if (at_ == uid) return std::optional<std::string_view>(value_);
        return std::optional<std::string_view>();
    }

private:
    void take(const lmdb::Cursor::Entry& e) {
        positioned_ = true;
        at_ = key_uid(e.key);
        value_ = e.value;
    }
    lmdb::Cursor cursor_;
    bool positioned_ = false;
    uint32_t at_ = 0;
    std::string_view value_;
};

}  // namespace

Result<std::unique_ptr<MaildirMailbox>> MaildirMailbox::open(std::shared_ptr<FolderIndex> index, std::string name,
                                                             bool read_only, FolderContext context,
                                                             bool claim_recent, const EarlyAnswer* early,
                                                             const IndexMeta* told) {
    std::unique_ptr<MaildirMailbox> mb(new MaildirMailbox);
    mb->name_ = std::move(name);
    mb->read_only_ = read_only;
    mb->context_ = std::move(context);
    mb->index_ = std::move(index);
    // No watch yet (see notify_fd()): an inotify watch on a big cur/ costs
    // the kernel a walk over all its cached entries, on every SELECT.
    // SELECT reads a few pages of the index: no read-ahead around them.
    FolderIndex::PointReads scattered(*mb->index_);
    RecentClaim claimed;
    RecentClaim* claim = claim_recent ? &claimed : nullptr;
    bool built = false;
    if (early) {
        // The header as built, not as read later: a delivery after the
        // build's commit is news for the next refresh(), as the answer
        // already went out without it.
        IndexMeta written;
        auto b = mb->index_->build_first(claim, *early, written);
        if (!b) return b.error();
        built = *b;
        if (built) mb->use_header(written);
    }
    if (!built) {
        if (auto s = mb->index_->sync(claim); !s) return s.error();
        // Told already (FolderIndex::answerable_header()): what a writer
        // changed since is news for the next refresh(), as above.
        if (told) mb->use_header(*told);
        else if (auto s = mb->read_header(); !s) return s.error();
    }
    if (claimed.from != 0) {
        mb->claiming_ = true;
        mb->note_claim(claimed.from, claimed.upto, claimed.taken);
    }
    return mb;
}

Status MaildirMailbox::read_header() {
    for (int attempt = 0;; ++attempt) {
        auto txn = index_->env().begin_read();
        if (!txn) return txn.error();
        auto m = index_->read_meta(*txn);
        if (!m) return m.error();
        if ((!m->counts_valid || !m->view_valid) && attempt == 0) {
            txn->abort();
            if (auto s = index_->rebuild_header(); !s) return s;
            continue;
        }
        use_header(*m);
        txn->abort();
        // A writer without counts came between the rebuild and us: count now.
        if (!m->counts_valid) return read_view();
        return {};
    }
}

void MaildirMailbox::use_header(const IndexMeta& m) {
    uidvalidity_ = m.uidvalidity;
    uidnext_ = m.uidnext;
    highestmodseq_ = m.modseq;
    keywords_ = m.keywords;
    recent_floor_ = m.recent_uid;
    counts_ = m.counts;
    if (m.unseen_valid && m.counts_valid) first_unseen_ = m.first_unseen;
    else first_unseen_.reset();
}

// The view as the session was told at open(): the records below that
// UIDNEXT.  Messages expunged since are put back (their vanished entries
// are newer than the modseq told) so that the next refresh() reports their
// EXPUNGE; flag changes since are remembered for it to report as well.
Status MaildirMailbox::read_view() const {
    auto txn = index_->env().begin_read();
    if (!txn) return txn.error();
    std::vector<ViewEntry> fresh;
    fresh.reserve(static_cast<size_t>(counts_.messages) + 16);
    std::vector<uint32_t> changed;
    uint64_t total = 0;
    {
        auto m = index_->read_meta(*txn);
        if (!m) return m.error();
        auto st = index_->for_each_entry(*txn, *m, true, [&](const PackedEntry& e) {
            if (e.uid >= uidnext_) return false;
            fresh.push_back({e.uid, e.flags, e.keywords, e.modseq});
            total += e.crlf_size;
            if (e.modseq > highestmodseq_) changed.push_back(e.uid);
            return true;
        }, [&] {
            fresh.clear();
            changed.clear();
            total = 0;
        });
        if (!st) return st;
    }
    if (fresh.size() != counts_.messages) {
        std::vector<ViewEntry> gone;
        auto cur = txn->cursor(index_->vanished);
        if (!cur) return cur.error();
        auto e = cur->first();
        for (; e && *e; e = cur->next()) {
            uint32_t uid = key_uid((*e)->key);
            if (uid >= uidnext_) break;
            uint64_t ms = 0;
            if ((*e)->value.size() == sizeof ms) std::memcpy(&ms, (*e)->value.data(), sizeof ms);
            if (ms > highestmodseq_) gone.push_back({uid, 0, 0, highestmodseq_});
        }
        if (!e) return e.error();
        std::vector<ViewEntry> merged(fresh.size() + gone.size());
        std::merge(fresh.begin(), fresh.end(), gone.begin(), gone.end(), merged.begin(),
                   [](const ViewEntry& a, const ViewEntry& b) { return a.uid < b.uid; });
        fresh = std::move(merged);
    }
    view_ = std::move(fresh);
    total_size_ = total;
    pending_flag_changes_ = std::move(changed);
    view_loaded_ = true;
    return {};
}

void MaildirMailbox::expect_view() const {
    if (!view_loaded_) index_->prefetch_view();
}

void MaildirMailbox::load_view() const {
    // view() cannot fail: a read error leaves it empty, and the next call
    // (refresh() at the latest) tries again.
    if (!view_loaded_) (void)read_view();
}

int MaildirMailbox::notify_fd() const {
    if (!watch_) {
        const std::string& dir = index_->dir();
        auto watch = watch_paths({dir + "/new", dir + "/cur", index_->index_path()});
        if (!watch) return -1;
        watch_ = std::move(*watch);
    }
    return watch_->fd();
}

MailboxStatus MaildirMailbox::status() const {
    MailboxStatus s;
    s.uidvalidity = uidvalidity_;
    s.uidnext = uidnext_;
    s.highestmodseq = highestmodseq_;
    s.recent = recent_count();
    if (!view_loaded_) {
        s.messages = static_cast<uint32_t>(counts_.messages);
        s.unseen = static_cast<uint32_t>(counts_.unseen);
        s.deleted = static_cast<uint32_t>(counts_.deleted);
        s.size = counts_.crlf_size;
        return s;
    }
    s.messages = static_cast<uint32_t>(view_.size());
    for (const auto& e : view_) {
        if (!(e.flags & kSeen)) ++s.unseen;
        if (e.flags & kDeleted) ++s.deleted;
        s.highestmodseq = std::max(s.highestmodseq, e.modseq);
    }
    s.size = total_size_;
    return s;
}

Result<uint32_t> MaildirMailbox::first_unseen() {
    if (view_loaded_) return Mailbox::first_unseen();
    if (counts_.unseen == 0) return uint32_t{0};
    // Kept in the header by the writers: no chunk to read.
    if (first_unseen_) return first_unseen_->uid ? static_cast<uint32_t>(first_unseen_->below + 1) : uint32_t{0};
    // Walks the packed view (29 bytes a message) up to the first unseen
    // message: at most a few MB for a 100,000-message folder, not its records.
    FolderIndex::PointReads scattered(*index_);
    auto txn = index_->env().begin_read();
    if (!txn) return txn.error();
    auto m = index_->read_meta(*txn);
    if (!m) return m.error();
    uint32_t seq = 0;
    bool found = false;
    auto st = index_->for_each_entry(*txn, *m, false, [&](const PackedEntry& e) {
        if (e.uid >= uidnext_) return false;
        ++seq;
        found = !(e.flags & kSeen);
        return !found;
    }, [&] {
        seq = 0;
        found = false;
    });
    if (!st) return st.error();
    return found ? seq : uint32_t{0};
}

Status MaildirMailbox::claim_recent() {
    if (read_only_) return {};  // EXAMINE MUST NOT take \Recent away (RFC 3501 6.3.2)
    claiming_ = true;
    if (uidnext_ <= 1) return {};
    // Taken by open() already (Store::open's claim_recent), or claimed by
    // another session before this one read the header (the mark only
    // grows): nothing to write.
    if (!claimed_.empty() && claimed_.back().second >= uidnext_ - 1) return {};
    if (recent_floor_ >= uidnext_ - 1) return {};
    return claim_up_to(uidnext_ - 1);
}

Status MaildirMailbox::claim_up_to(uint32_t upto) {
    uint32_t from = 0;
    uint64_t taken = 0;
    auto st = index_->write([&](lmdb::Txn& txn) -> Status {
        from = 0;
        taken = 0;
        auto m = index_->read_meta(txn);
        if (!m) return m.error();
        if (m->recent_uid >= upto) return {};  // another session has them
        from = m->recent_uid + 1;
        m->recent_uid = upto;
        // Count the records above `upto` (arrived since: they stay
        // unclaimed); the claimed ones are the rest of the unclaimed.
        auto cur = txn.cursor(index_->msgs);
        if (!cur) return cur.error();
        uint64_t above = 0, total = 0;
        auto e = cur->seek(uid_key(m->counts_valid ? upto + 1 : from));
        for (; e && *e; e = cur->next()) {
            ++total;
            if (key_uid((*e)->key) > upto) ++above;
        }
        if (!e) return e.error();
        cur->close();
        taken = m->counts_valid ? m->counts.unclaimed - std::min(m->counts.unclaimed, above) : total - above;
        m->counts.unclaimed = above;
        return index_->write_meta(txn, *m);
    });
    if (!st) return st;
    if (from != 0) note_claim(from, upto, taken);
    return {};
}

void MaildirMailbox::note_claim(uint32_t from, uint32_t upto, uint64_t taken) {
    claimed_messages_ += taken;
    if (!claimed_.empty() && claimed_.back().second + 1 >= from) claimed_.back().second = upto;
    else claimed_.emplace_back(from, upto);
}

bool MaildirMailbox::is_recent(uint32_t uid) const {
    if (!claiming_) return uid > recent_floor_;
    auto it = std::upper_bound(claimed_.begin(), claimed_.end(), uid,
                               [](uint32_t u, const std::pair<uint32_t, uint32_t>& r) { return u < r.first; });
    return it != claimed_.begin() && uid <= std::prev(it)->second;
}

uint32_t MaildirMailbox::recent_count() const {
    if (!view_loaded_) return static_cast<uint32_t>(claiming_ ? claimed_messages_ : counts_.unclaimed);
    if (claiming_ && claimed_.empty()) return 0;
    uint32_t n = 0;
    for (const auto& e : view()) n += is_recent(e.uid) ? 1 : 0;
    return n;
}

Result<Changes> MaildirMailbox::refresh() {
    if (watch_) watch_->drain();
    if (auto s = index_->sync(); !s) return s.error();
    return update_view();
}

Result<Changes> MaildirMailbox::update_view() {
    Changes ch;
    auto txn = index_->env().begin_read();
    if (!txn) return txn.error();
    auto m = index_->read_meta(*txn);
    if (!m) return m.error();
    bool reset = uidvalidity_ != 0 && m->uidvalidity != uidvalidity_;
    if (!reset && m->modseq == highestmodseq_ && m->uidnext == uidnext_ && m->keywords == keywords_) {
        ch.exists = exists();
        return ch;
    }
    if (!view_loaded_)
        if (auto s = read_view(); !s) return s.error();
    std::vector<ViewEntry> fresh;
    fresh.reserve(view_.size() + 16);
    uint64_t total = 0;
    auto walked = index_->for_each_entry(*txn, *m, true, [&](const PackedEntry& e) {
        fresh.push_back({e.uid, e.flags, e.keywords, e.modseq});
        total += e.crlf_size;
        return true;
    }, [&] {
        fresh.clear();
        total = 0;
    });
    if (!walked) return walked.error();
    if (reset) {
        ch.uidvalidity_changed = true;
        view_.clear();
        claimed_.clear();  // UIDs of the old validity
        claimed_messages_ = 0;
    }
    size_t i = 0, j = 0;
    while (i < view_.size() || j < fresh.size()) {
        if (j == fresh.size() || (i < view_.size() && view_[i].uid < fresh[j].uid)) {
            ch.expunged_uids.push_back(view_[i].uid);
            ch.expunged_seqs.push_back(static_cast<uint32_t>(i + 1));
            ++i;
        } else if (i == view_.size() || fresh[j].uid < view_[i].uid) {
            ch.new_uids.push_back(fresh[j].uid);
            ++j;
        } else {
            const ViewEntry& a = view_[i];
            const ViewEntry& b = fresh[j];
            if (a.flags != b.flags || a.keywords != b.keywords || a.modseq != b.modseq) ch.flag_changes.push_back(b.uid);
            ++i;
            ++j;
        }
    }
    if (!pending_flag_changes_.empty()) {
        // Changed between open() and the view's loading: the diff above
        // cannot see them (the view was loaded with the new flags).
        auto in_fresh = [&](uint32_t uid) {
            auto it = std::lower_bound(fresh.begin(), fresh.end(), uid,
                                       [](const ViewEntry& e, uint32_t u) { return e.uid < u; });
            return it != fresh.end() && it->uid == uid;
        };
        if (!reset)
            for (uint32_t uid : pending_flag_changes_)
                if (in_fresh(uid)) ch.flag_changes.push_back(uid);
        std::sort(ch.flag_changes.begin(), ch.flag_changes.end());
        ch.flag_changes.erase(std::unique(ch.flag_changes.begin(), ch.flag_changes.end()), ch.flag_changes.end());
        pending_flag_changes_.clear();
    }
    ch.keywords_changed = m->keywords != keywords_;
    view_ = std::move(fresh);
    uidvalidity_ = m->uidvalidity;
    uidnext_ = m->uidnext;
    highestmodseq_ = m->modseq;
    keywords_ = m->keywords;
    total_size_ = total;
    ch.exists = static_cast<uint32_t>(view_.size());
    // New arrivals are this session's \Recent ones if no other session took them.
    if (claiming_ && !ch.new_uids.empty()) (void)claim_up_to(ch.new_uids.back());
    return ch;
}

Status MaildirMailbox::for_each(std::span<const uint32_t> uids, uint32_t fields,
                                const std::function<void(const MessageData&)>& fn) {
    bool want_cache = fields & (kFieldEnvelope | kFieldBodyStructure | kFieldBody | kFieldHeaders);
    if (want_cache || (fields & kFieldInternalDate)) {
        // Files indexed from their names alone are read now, once.
        std::vector<uint32_t> missing;
        {
            auto txn = index_->env().begin_read();
            if (!txn) return txn.error();
            auto c = txn->cursor(index_->msgs);
            if (!c) return c.error();
            UidCursor by_uid{std::move(*c)};
            for (uint32_t uid : uids) {
                auto raw = by_uid.get(uid);
                if (!raw) return raw.error();
                if (!*raw) continue;
                auto rec = decode_record(**raw);
                if (rec && !rec->cached) missing.push_back(uid);
            }
        }
        if (!missing.empty()) {
            auto unread = index_->fill(missing);
            if (!unread) return unread.error();
            if (*unread > 0) {
                // Renamed by another tool meanwhile: learn the names, try once more.
                if (auto s = index_->sync(); !s) return s;
                if (auto again = index_->fill(missing); !again) return again.error();
            }
        }
    }
    auto txn = index_->env().begin_read();
    if (!txn) return txn.error();
    auto msgs_cursor = txn->cursor(index_->msgs);
    if (!msgs_cursor) return msgs_cursor.error();
    auto cache_cursor = txn->cursor(index_->cache);
    if (!cache_cursor) return cache_cursor.error();
    UidCursor by_uid{std::move(*msgs_cursor)}, cache_by_uid{std::move(*cache_cursor)};
    for (uint32_t uid : uids) {
        auto raw = by_uid.get(uid);
        if (!raw) return raw.error();
        if (!*raw) continue;
        auto rec = decode_record(**raw);
        if (!rec) continue;
        // Still unreadable (gone): no half answer with empty strings.
        if (!rec->cached && (want_cache || (fields & kFieldInternalDate))) continue;
        MessageData d;
        d.uid = uid;
        d.flags = rec->flags;
        d.keywords = rec->keywords;
        d.modseq = rec->modseq;
        d.size = rec->size;
        d.crlf_size = rec->crlf_size;
        d.internal_date = rec->internal_date;
        d.internal_date_offset = rec->date_offset;
        if (want_cache) {
            auto c = cache_by_uid.get(uid);
            if (!c) return c.error();
            if (*c) {
                if (auto cache = decode_cache(**c)) {
                    d.envelope = cache->envelope;
                    d.bodystructure = cache->bodystructure;
                    d.body = cache->body;
                    d.headers = cache->headers;
                }
            }
        }
        fn(d);
    }
    return {};
}

Result<std::unique_ptr<MessageBody>> MaildirMailbox::open_body(uint32_t uid) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        std::string filename;
        {
            auto txn = index_->env().begin_read();
            if (!txn) return txn.error();
            auto raw = txn->get(index_->msgs, uid_key(uid));
            if (!raw) return raw.error();
            auto rec = *raw ? decode_record(**raw) : std::nullopt;
            if (!rec) return make_error("no message with UID " + std::to_string(uid));
            filename = rec->filename;
        }
        std::string path = index_->dir() + "/cur/" + filename;
        Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!fd) {
            if (errno == ENOENT && attempt == 0) {
                // Renamed by another process or tool: learn the new name.
                if (auto s = index_->sync(); !s) return s.error();
                continue;
            }
            return errno_error("open " + path);
        }
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) return errno_error("stat " + path);
        auto bytes = MessageBytes::read(fd.get(), static_cast<size_t>(st.st_size), path);
        if (!bytes) return bytes.error();
        return std::unique_ptr<MessageBody>(new FileBody(std::move(fd), std::move(*bytes)));
    }
    return make_error("message with UID " + std::to_string(uid) + " is gone");
}

Result<StoreResult> MaildirMailbox::store_flags(std::span<const uint32_t> uids, FlagOp op, const Flags& flags,
                                                std::optional<uint64_t> unchanged_since) {
    if (read_only_) return make_error("mailbox is read-only");
    StoreResult result;
    struct Update {
        uint32_t uid;
        uint8_t flags;
        uint64_t keywords, modseq;
    };
    std::vector<Update> updates;
    std::vector<std::string> keywords_after;
    const std::string cur_dir = index_->dir() + "/cur/";
    auto st = index_->write([&](lmdb::Txn& txn) -> Status {
        updates.clear();
        result = StoreResult{};
        ViewDelta delta;
        auto m = index_->read_meta(txn);
        if (!m) return m.error();
        bool full = false;
        uint64_t kw = keyword_mask(*m, flags.keywords, op != FlagOp::Remove, full);
        if (full) return make_error("too many keywords in this mailbox (limit " + std::to_string(kMaxKeywords) + ")");
        int64_t cur_was = index_->cur_before(*m);
        uint64_t modseq = m->modseq + 1;
        for (uint32_t uid : uids) {
            if (!entry(uid)) continue;
            std::string key = uid_key(uid);
            auto raw = txn.get(index_->msgs, key);
            if (!raw) return raw.error();
            auto rec = *raw ? decode_record(**raw) : std::nullopt;
            if (!rec) continue;
            if (unchanged_since && rec->modseq > *unchanged_since) {
                result.modified.push_back(uid);
                continue;
            }
            uint8_t nf = rec->flags;
            uint64_t nk = rec->keywords;
            switch (op) {
            case FlagOp::Add: nf |= flags.system & kAllSystemFlags; nk |= kw; break;
            case FlagOp::Remove: nf &= static_cast<uint8_t>(~flags.system); nk &= ~kw; break;
            case FlagOp::Replace: nf = flags.system & kAllSystemFlags; nk = kw; break;
            }
            if (nf == rec->flags && nk == rec->keywords) continue;
            std::string filename(rec->filename);
            if (nf != rec->flags) {
                auto parsed = parse_message_name(rec->filename);
                std::string renamed = message_file_name(parsed.base, nf, parsed.letters);
                if (::rename((cur_dir + filename).c_str(), (cur_dir + renamed).c_str()) != 0) {
                    struct stat s {};
                    // Gone (expunged elsewhere) unless a previous run of this transaction renamed it.
                    if (::stat((cur_dir + renamed).c_str(), &s) != 0) continue;
                }
                filename = renamed;
            }
            MessageRecord upd = *rec;
            upd.flags = nf;
            upd.keywords = nk;
            upd.modseq = modseq;
            upd.filename = filename;
            if (auto s = txn.put(index_->msgs, key, encode_record(upd)); !s) return s;
            m->count_out(uid, *rec);
            m->count_in(uid, upd);
            delta.put(uid, upd);
            updates.push_back({uid, nf, nk, modseq});
        }
        keywords_after = m->keywords;
        if (updates.empty() && keywords_after == keywords_) return {};
        if (!updates.empty()) m->modseq = modseq;
        index_->cur_after(*m, cur_was);
        return index_->write_meta(txn, *m, &delta);
    });
    if (!st) return st.error();
    for (const auto& u : updates) {
        uint32_t seq = seq_of(u.uid);
        if (!seq) continue;
        ViewEntry& e = view_[seq - 1];
        e.flags = u.flags;
        e.keywords = u.keywords;
        e.modseq = u.modseq;
        result.changed.push_back(u.uid);
    }
    if (keywords_after.size() > keywords_.size()) {
        keywords_ = keywords_after;
        result.keywords_changed = true;
    }
    return result;
}

Result<Changes> MaildirMailbox::remove(const std::vector<uint32_t>& uids) {
    load_view();  // the Changes below are about it
    struct Removed {
        uint32_t uid;
        uint64_t size, crlf_size;
        bool operator<(const Removed& o) const { return uid < o.uid; }
    };
    std::vector<Removed> removed;
    const std::string cur_dir = index_->dir() + "/cur/";
    auto st = index_->write([&](lmdb::Txn& txn) -> Status {
        removed.clear();
        ViewDelta delta;
        auto m = index_->read_meta(txn);
        if (!m) return m.error();
        int64_t cur_was = index_->cur_before(*m);
        uint64_t modseq = m->modseq + 1;
        for (uint32_t uid : uids) {
            std::string key = uid_key(uid);
            auto raw = txn.get(index_->msgs, key);
            if (!raw) return raw.error();
            auto rec = *raw ? decode_record(**raw) : std::nullopt;
            if (!rec) continue;
            if (::unlink((cur_dir + std::string(rec->filename)).c_str()) != 0 && errno != ENOENT)
                return errno_error("unlink " + cur_dir + std::string(rec->filename));
            std::string base(parse_message_name(rec->filename).base);
            Removed gone{uid, rec->size, rec->crlf_size};
            m->count_out(uid, *rec);
            if (auto r = txn.del(index_->msgs, key); !r) return r.error();
            if (auto r = txn.del(index_->cache, key); !r) return r.error();
            delta.erase(uid);
            (void)txn.del(index_->names, base);
            if (auto s = txn.put(index_->vanished, key, std::string(reinterpret_cast<const char*>(&modseq), 8)); !s)
                return s;
            removed.push_back(gone);
        }
        if (removed.empty()) return {};
        if (auto s = index_->bound_vanished(txn, *m); !s) return s;
        m->modseq = modseq;
        index_->cur_after(*m, cur_was);
        return index_->write_meta(txn, *m, &delta);
    });
    if (!st) return st.error();
    Changes ch;
    if (!removed.empty() && context_.quota_bytes > 0) {
        int64_t bytes = 0;
        for (auto& r : removed) bytes += static_cast<int64_t>(r.size);
        (void)maildir::quota_record(context_.root, context_.quota_bytes, -bytes, -static_cast<int64_t>(removed.size()));
    }
    std::sort(removed.begin(), removed.end());
    std::vector<ViewEntry> kept;
    kept.reserve(view_.size());
    size_t k = 0;
    for (size_t i = 0; i < view_.size(); ++i) {
        while (k < removed.size() && removed[k].uid < view_[i].uid) ++k;
        if (k < removed.size() && removed[k].uid == view_[i].uid) {
            ch.expunged_uids.push_back(view_[i].uid);
            ch.expunged_seqs.push_back(static_cast<uint32_t>(i + 1));
        } else {
            kept.push_back(view_[i]);
        }
    }
    view_ = std::move(kept);
    ch.exists = static_cast<uint32_t>(view_.size());
    for (auto& r : removed) total_size_ -= std::min(total_size_, r.crlf_size);
    return ch;
}

Result<Changes> MaildirMailbox::expunge(std::optional<std::span<const uint32_t>> only) {
    if (read_only_) return make_error("mailbox is read-only");
    load_view();
    std::vector<uint32_t> wanted;
    {
        auto txn = index_->env().begin_read();
        if (!txn) return txn.error();
        auto consider = [&](uint32_t uid) -> Status {
            if (!entry(uid)) return {};
            auto raw = txn->get(index_->msgs, uid_key(uid));
            if (!raw) return raw.error();
            auto rec = *raw ? decode_record(**raw) : std::nullopt;
            if (rec && (rec->flags & kDeleted)) wanted.push_back(uid);
            return {};
        };
        if (only) {
            for (uint32_t uid : *only)
                if (auto s = consider(uid); !s) return s.error();
        } else {
            for (const auto& e : view_)
                if (auto s = consider(e.uid); !s) return s.error();
        }
    }
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    return remove(wanted);
}

Result<CopyResult> MaildirMailbox::copy(std::span<const uint32_t> uids, const std::string& dest_folder) {
    return copy_messages(uids, dest_folder, true);
}

Status MaildirMailbox::check_quota(const std::vector<uint32_t>& uids) {
    uint64_t bytes = 0;
    {
        auto txn = index_->env().begin_read();
        if (!txn) return txn.error();
        for (uint32_t uid : uids) {
            if (!entry(uid)) continue;
            auto raw = txn->get(index_->msgs, uid_key(uid));
            if (!raw) return raw.error();
            if (auto rec = *raw ? decode_record(**raw) : std::nullopt) bytes += rec->size;
        }
    }
    auto fits = maildir::quota_allows(context_.root, context_.quota_bytes, bytes);
    if (!fits) return make_error("cannot read the quota: " + fits.message());
    if (!*fits) return make_error(std::string(kOverQuota) + ": the copies do not fit in the mailbox quota");
    return {};
}

Result<CopyResult> MaildirMailbox::copy_messages(std::span<const uint32_t> uids, const std::string& dest_folder,
                                                 bool enforce_quota) {
    auto dest = context_.open_folder(dest_folder);
    if (!dest) return dest.error();
    CopyResult result;
    std::vector<uint32_t> sorted(uids.begin(), uids.end());
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    // All or nothing (RFC 9051 6.4.7): the quota is judged before the first copy.
    if (enforce_quota && context_.quota_bytes > 0)
        if (Status s = check_quota(sorted); !s) return s.error();
    const std::string src_cur = index_->dir() + "/cur/", dest_tmp = (*dest)->dir() + "/tmp/";
    constexpr size_t kChunk = 500;
    uint64_t copied_bytes = 0;
    for (size_t start = 0; start < sorted.size(); start += kChunk) {
        std::vector<Incoming> incoming;
        std::vector<uint32_t> sources;
        {
            auto txn = index_->env().begin_read();
            if (!txn) return txn.error();
            auto m = index_->read_meta(*txn);
            if (!m) return m.error();
            for (size_t i = start; i < std::min(sorted.size(), start + kChunk); ++i) {
                uint32_t uid = sorted[i];
                if (!entry(uid)) continue;
                std::string key = uid_key(uid);
                auto raw = txn->get(index_->msgs, key);
                if (!raw) return raw.error();
                auto rec = *raw ? decode_record(**raw) : std::nullopt;
                if (!rec) continue;
                Incoming in;
                in.tmp_name = maildir::unique_name();
                if (auto s = link_into_tmp(src_cur + std::string(rec->filename), dest_tmp + in.tmp_name); !s) {
                    if (errno == ENOENT) continue;  // expunged meanwhile
                    return s.error();
                }
                in.flags = rec->flags;
                for (size_t b = 0; b < m->keywords.size(); ++b)
                    if (rec->keywords & (uint64_t{1} << b)) in.keywords.push_back(m->keywords[b]);
                in.size = rec->size;
                in.crlf_size = rec->crlf_size;
                in.internal_date = rec->internal_date;
                in.date_offset = rec->date_offset;
                in.cached = rec->cached;  // not read yet: the copy is read at its first need (same file)
                auto c = txn->get(index_->cache, key);
                if (c && *c) {
                    if (auto cache = decode_cache(**c)) {
                        in.cache.envelope = cache->envelope;
                        in.cache.bodystructure = cache->bodystructure;
                        in.cache.body = cache->body;
                        in.cache.headers = cache->headers;
                    }
                }
                incoming.push_back(std::move(in));
                sources.push_back(uid);
            }
        }
        auto new_uids = (*dest)->adopt(incoming);
        if (!new_uids) {
            for (const auto& in : incoming) ::unlink((dest_tmp + in.tmp_name).c_str());
            return new_uids.error();
        }
        for (size_t i = 0; i < sources.size(); ++i) {
            if ((*new_uids)[i] == 0) continue;
            result.source_uids.push_back(sources[i]);
            result.dest_uids.push_back((*new_uids)[i]);
            copied_bytes += incoming[i].size;
        }
    }
    auto txn = (*dest)->env().begin_read();
    if (!txn) return txn.error();
    auto dm = (*dest)->read_meta(*txn);
    if (!dm) return dm.error();
    result.dest_uidvalidity = dm->uidvalidity;
    if (context_.quota_bytes > 0 && copied_bytes > 0) {
        // Copies count against the quota like deliveries (the Maildir++ quota covers all folders).
        (void)maildir::quota_record(context_.root, context_.quota_bytes, static_cast<int64_t>(copied_bytes),
                                    static_cast<int64_t>(result.dest_uids.size()));
    }
    return result;
}

Result<CopyResult> MaildirMailbox::move(std::span<const uint32_t> uids, const std::string& dest_folder,
                                        Changes& expunged) {
    if (read_only_) return make_error("mailbox is read-only");
    // The messages stay under the same quota root: no quota check.
    auto copied = copy_messages(uids, dest_folder, false);
    if (!copied) return copied.error();
    std::vector<uint32_t> sources = copied->source_uids;
    std::sort(sources.begin(), sources.end());
    auto removed = remove(sources);
    if (!removed) return removed.error();
    expunged = std::move(*removed);
    return copied;
}

Result<std::vector<uint32_t>> MaildirMailbox::vanished_since(uint64_t modseq, bool& complete) {
    std::vector<uint32_t> out;
    auto txn = index_->env().begin_read();
    if (!txn) return txn.error();
    auto m = index_->read_meta(*txn);
    if (!m) return m.error();
    complete = modseq >= m->vanished_floor;
    auto cur = txn->cursor(index_->vanished);
    if (!cur) return cur.error();
    auto e = cur->first();
    for (; e && *e; e = cur->next()) {
        uint64_t ms = 0;
        if ((*e)->value.size() == sizeof ms) std::memcpy(&ms, (*e)->value.data(), sizeof ms);
        if (ms > modseq) out.push_back(key_uid((*e)->key));
    }
    if (!e) return e.error();
    return out;
}

std::string MaildirMailbox::unique_id(uint32_t uid) const {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%08X%08X", uidvalidity_, uid);
    return buf;
}

Result<std::unique_ptr<MessageWriter>> MaildirMailbox::append() {
    if (read_only_) return make_error("mailbox is read-only");
    return begin_message(index_, context_);
}

}  // namespace tern::mailstore
