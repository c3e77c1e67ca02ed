// APPEND / delivery into a Maildir folder: the message is written into tmp/
// with CRLF stored as LF, fsync'd, parsed once for the index cache, then
// renamed into cur/ under the index's write lock so that it is never seen
// without its UID (FolderIndex::adopt).  A delivery names the file itself
// (DeliveryOptions::unique_name): a rename that finds the name taken is
// that delivery done before.  Deliveries without flags go to new/.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "lib/core/errno_text.hpp"
#include "lib/core/fd.hpp"
#include "lib/mailstore/maildir_mailbox.hpp"
#include "lib/mailstore/message_bytes.hpp"
#include "lib/maildir/maildir.hpp"
#include "lib/maildir/quota.hpp"
#include "lib/sys/files.hpp"

namespace tern::mailstore {
namespace {


// The outcome of one folder's syncs after a publish, shared by the folder's
// writers; each sync job writes its own slot.
struct FolderSync {
    std::vector<Status> jobs;
};

class MaildirMessageWriter final : public MessageWriter {
public:
    MaildirMessageWriter(std::shared_ptr<FolderIndex> index, FolderContext context, std::string tmp_name, Fd fd,
                         std::string base, bool into_new)
        : index_(std::move(index)),
          context_(std::move(context)),
          tmp_name_(std::move(tmp_name)),
          base_(std::move(base)),
          into_new_(into_new),
          fd_(std::move(fd)) {}
    ~MaildirMessageWriter() override {
        if (!tmp_name_.empty()) ::unlink(tmp_path().c_str());
    }

    Status write(std::string_view data) override {
        if (!fd_ || staged_) return make_error("message writer is closed");
        buffer_.clear();
        buffer_.reserve(data.size() + 1);
        // Runs between CRs are copied whole (a delivery's body has none).
        size_t i = 0;
        while (i < data.size()) {
            if (pending_cr_) {
                pending_cr_ = false;
                if (data[i] == '\n') {
                    emit('\n');
                    ++i;
                    continue;
                }
                emit('\r');
            }
            size_t cr = data.find('\r', i);
            emit_run(data.substr(i, cr == std::string_view::npos ? std::string_view::npos : cr - i));
            if (cr == std::string_view::npos) break;
            pending_cr_ = true;
            i = cr + 1;
        }
        return flush();
    }

    Result<uint32_t> commit(const Flags& flags, int64_t internal_date, int date_offset) override {
        if (auto s = prepare(flags, internal_date, date_offset); !s) return s.error();
        if (auto s = data_sync()(); !s) return s.error();
        std::vector<std::function<Status()>> syncs;
        MessageWriter* self = this;
        publish_staged(std::span<MessageWriter* const>(&self, 1), syncs);
        for (auto& job : syncs) (void)job();  // failures are recorded for result()
        return result();
    }

    Status stage(const Flags& flags) override { return prepare(flags, 0, 0); }

    std::function<Status()> data_sync() override {
        if (!staged_ || !fd_) return [] { return Status(make_error("message writer is not staged")); };
        return [fd = fd_.get(), path = tmp_path()]() -> Status {
            if (::fsync(fd) != 0) return errno_error("fsync " + path);
            return {};
        };
    }

    Result<uint32_t> result() const override {
        if (!result_) return result_.error();
        if (folder_)
            for (const auto& s : folder_->jobs)
                if (!s) return s.error();
        return *result_;
    }

    bool earlier() const override { return earlier_; }

    // Store::publish for the Maildir backend: the staged writers of each
    // folder go into the folder's index in one adopt(); the folder's syncs
    // are handed to the caller.
    static void publish_staged(std::span<MessageWriter* const> writers, std::vector<std::function<Status()>>& syncs) {
        std::map<FolderIndex*, std::vector<MaildirMessageWriter*>> folders;
        for (MessageWriter* w : writers) {
            auto* mw = dynamic_cast<MaildirMessageWriter*>(w);
            if (!mw) continue;
            if (!mw->staged_ || !mw->fd_) {
                mw->result_ = make_error("message writer is not staged");
                continue;
            }
            folders[mw->index_.get()].push_back(mw);
        }
        for (auto& entry : folders) publish_folder(entry.second, syncs);
    }

private:
    // What commit() does before anything becomes durable: the last bytes,
    // the times, the cache the index keeps, the quota.
    Status prepare(const Flags& flags, int64_t internal_date, int date_offset) {
        if (!fd_ || staged_) return make_error("message writer is closed");
        if (pending_cr_) {
            pending_cr_ = false;
            buffer_.clear();
            emit('\r');
            if (auto s = flush(); !s) return s;
        }
        if (internal_date > 0) {
            struct timespec times[2] = {{internal_date, 0}, {internal_date, 0}};
            ::futimens(fd_.get(), times);
        } else {
            internal_date = ::time(nullptr);
        }
        Incoming& in = incoming_;
        in.tmp_name = tmp_name_;
        in.flags = flags.system & kAllSystemFlags;
        in.keywords = flags.keywords;
        in.size = size_;
        in.crlf_size = crlf_size_;
        in.internal_date = internal_date;
        in.date_offset = static_cast<int16_t>(date_offset);
        in.base = base_;
        in.into_new = into_new_;
        auto message = MessageBytes::read(fd_.get(), size_, tmp_path());
        if (!message) return message.error();
        in.cache = build_cache(message->bytes());
        if (context_.quota_bytes > 0) {
            auto fits = maildir::quota_allows(context_.root, context_.quota_bytes, size_);
            if (!fits) return make_error("cannot read the quota: " + fits.message());
            if (!*fits) return make_error(std::string(kOverQuota) + ": the message does not fit in the mailbox quota");
        }
        staged_ = true;
        return {};
    }

    // One folder's staged writers (data synced): one index transaction that
    // renames them into place, then the folder's syncs for the caller.
    static void publish_folder(const std::vector<MaildirMessageWriter*>& group,
                               std::vector<std::function<Status()>>& syncs) {
        std::vector<Incoming> incoming;
        for (auto* w : group) {
            w->fd_.reset();
            incoming.push_back(std::move(w->incoming_));
        }
        std::shared_ptr<FolderIndex> index = group.front()->index_;
        AdoptSyncs needed;
        auto uids = index->adopt(incoming, &needed);
        if (!uids) {
            for (auto* w : group) w->result_ = uids.error();
            return;
        }
        auto folder = std::make_shared<FolderSync>();
        std::vector<std::function<Status()>> jobs;
        if (needed.cur) jobs.push_back([dir = index->dir() + "/cur"] { return sys::fsync_dir(dir); });
        if (needed.new_dir) jobs.push_back([dir = index->dir() + "/new"] { return sys::fsync_dir(dir); });
        jobs.push_back([index] { return sync_to_disk(index->env()); });
        folder->jobs.resize(jobs.size());
        for (size_t j = 0; j < jobs.size(); ++j)
            syncs.push_back([folder, j, job = std::move(jobs[j])] {
                folder->jobs[j] = job();
                return folder->jobs[j];
            });
        for (size_t i = 0; i < group.size(); ++i) {
            MaildirMessageWriter* w = group[i];
            w->folder_ = folder;
            if (incoming[i].earlier) {
                // This delivery was stored by an earlier attempt: the folder's
                // syncs cover the directory its file is in.
                ::unlink(w->tmp_path().c_str());
                w->tmp_name_.clear();
                w->earlier_ = true;
                w->result_ = uint32_t{0};
                continue;
            }
            if ((*uids)[i] == 0) {
                w->result_ = make_error("could not move " + w->tmp_path() + " into the folder");
                continue;
            }
            w->tmp_name_.clear();
            w->result_ = (*uids)[i];
            if (w->context_.quota_bytes > 0)
                (void)maildir::quota_record(w->context_.root, w->context_.quota_bytes, static_cast<int64_t>(w->size_), 1);
        }
    }

    std::string tmp_path() const { return index_->dir() + "/tmp/" + tmp_name_; }
    void emit(char c) {
        buffer_ += c;
        ++size_;
        ++crlf_size_;
        // Every stored LF not preceded by CR is sent as CRLF.
        if (c == '\n' && last_ != '\r') ++crlf_size_;
        last_ = c;
    }
    // emit() for a run without CR: only its first LF can follow a CR.
    void emit_run(std::string_view run) {
        if (run.empty()) return;
        buffer_.append(run);
        size_ += run.size();
        crlf_size_ += run.size() + static_cast<uint64_t>(std::count(run.begin(), run.end(), '\n'));
        if (run.front() == '\n' && last_ == '\r') --crlf_size_;
        last_ = run.back();
    }
    Status flush() {
        if (buffer_.empty()) return {};
        if (auto s = sys::write_all(fd_.get(), buffer_); !s) return make_error("write " + tmp_path() + ": " + s.message());
        buffer_.clear();
        return {};
    }

    std::shared_ptr<FolderIndex> index_;
    FolderContext context_;
    std::string tmp_name_;
    std::string base_;
    bool into_new_ = false;
    bool earlier_ = false;
    bool staged_ = false;
    Incoming incoming_;
    Result<uint32_t> result_ = make_error("message not committed");
    std::shared_ptr<FolderSync> folder_;
    Fd fd_;
    std::string buffer_;
    bool pending_cr_ = false;
    char last_ = 0;
    uint64_t size_ = 0, crlf_size_ = 0;
};

}  // namespace

Result<std::unique_ptr<MessageWriter>> begin_message(std::shared_ptr<FolderIndex> index, FolderContext context,
                                                     std::string base, bool into_new) {
    for (int attempt = 0; attempt < 5; ++attempt) {
        std::string name = maildir::unique_name();
        std::string path = index->dir() + "/tmp/" + name;
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0)
            return std::unique_ptr<MessageWriter>(
                new MaildirMessageWriter(std::move(index), std::move(context), std::move(name), Fd(fd), std::move(base), into_new));
        if (errno != EEXIST) return errno_error("create " + path);
    }
    return make_error("no unique name in " + index->dir() + "/tmp");
}

void publish_messages(std::span<MessageWriter* const> writers, std::vector<std::function<Status()>>& syncs) {
    MaildirMessageWriter::publish_staged(writers, syncs);
}

}  // namespace tern::mailstore
