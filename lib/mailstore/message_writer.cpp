// APPEND / delivery into a Maildir folder: the message is written into tmp/
// with CRLF stored as LF, fsync'd, parsed once for the index cache, then
// renamed into cur/ under the index's write lock so that it is never seen
// without its UID (FolderIndex::adopt).  A delivery names the file itself
// (DeliveryOptions::unique_name): a rename that finds the name taken is
// that delivery done before.  Deliveries without flags go to new/.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "lib/core/errno_text.hpp"
#include "lib/core/fd.hpp"
#include "lib/mailstore/maildir_mailbox.hpp"
#include "lib/maildir/maildir.hpp"
#include "lib/maildir/quota.hpp"
#include "lib/sys/files.hpp"

namespace tern::mailstore {
namespace {

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
        if (!fd_) return make_error("message writer is closed");
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
        if (!fd_) return make_error("message writer is closed");
        if (pending_cr_) {
            pending_cr_ = false;
            buffer_.clear();
            emit('\r');
            if (auto s = flush(); !s) return s.error();
        }
        if (internal_date > 0) {
            struct timespec times[2] = {{internal_date, 0}, {internal_date, 0}};
            ::futimens(fd_.get(), times);
        } else {
            internal_date = ::time(nullptr);
        }
        if (::fsync(fd_.get()) != 0) return errno_error("fsync " + tmp_path());
        Incoming in;
        in.tmp_name = tmp_name_;
        in.flags = flags.system & kAllSystemFlags;
        in.keywords = flags.keywords;
        in.size = size_;
        in.crlf_size = crlf_size_;
        in.internal_date = internal_date;
        in.date_offset = static_cast<int16_t>(date_offset);
        in.base = base_;
        in.into_new = into_new_;
        if (size_ > 0) {
            void* map = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_.get(), 0);
            if (map == MAP_FAILED) return errno_error("mmap " + tmp_path());
            in.cache = build_cache(std::string_view(static_cast<const char*>(map), size_));
            ::munmap(map, size_);
        } else {
            in.cache = build_cache({});
        }
        if (context_.quota_bytes > 0) {
            auto fits = maildir::quota_allows(context_.root, context_.quota_bytes, size_);
            if (!fits) return make_error("cannot read the quota: " + fits.message());
            if (!*fits) return make_error(std::string(kOverQuota) + ": the message does not fit in the mailbox quota");
        }
        fd_.reset();
        std::vector<Incoming> one;
        one.push_back(std::move(in));
        auto uids = index_->adopt(one);
        if (!uids) return uids.error();
        if (one[0].earlier) {
            // This delivery was stored by an earlier attempt; adopt() has synced cur/.
            ::unlink(tmp_path().c_str());
            tmp_name_.clear();
            earlier_ = true;
            return uint32_t{0};
        }
        if ((*uids)[0] == 0) return make_error("could not move " + tmp_path() + " into cur/");
        tmp_name_.clear();
        if (context_.quota_bytes > 0)
            (void)maildir::quota_record(context_.root, context_.quota_bytes, static_cast<int64_t>(size_), 1);
        return (*uids)[0];
    }

    bool earlier() const override { return earlier_; }

private:
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

}  // namespace tern::mailstore
