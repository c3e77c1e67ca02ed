// The Mailbox of the Maildir store: a session's view over one folder's
// index (folder_index.hpp), its change notices (change_watcher.hpp), and
// the operations that write the folder.
#pragma once

#include <functional>
#include <utility>
#include <memory>
#include <string>
#include <vector>

#include "lib/mailstore/change_watcher.hpp"
#include "lib/mailstore/folder_index.hpp"
#include "lib/mailstore/mailstore.hpp"

namespace tern::mailstore {

// How a Mailbox reaches other folders of its store (COPY/MOVE targets) and
// keeps the Maildir++ quota file current.
struct FolderContext {
    std::string root;
    uint64_t quota_bytes = 0;
    std::function<Result<std::shared_ptr<FolderIndex>>(const std::string& folder)> open_folder;
};

class MaildirMailbox final : public Mailbox {
public:
    static Result<std::unique_ptr<MaildirMailbox>> open(std::shared_ptr<FolderIndex> index, std::string name,
                                                        bool read_only, FolderContext context,
                                                        bool claim_recent = false,
                                                        const EarlyAnswer* early = nullptr,
                                                        const IndexMeta* told = nullptr);

    const std::string& name() const override { return name_; }
    MailboxStatus status() const override;
    bool read_only() const override { return read_only_; }
    std::span<const ViewEntry> view() const override {
        load_view();
        return view_;
    }
    void expect_view() const override;
    const std::vector<std::string>& keywords() const override { return keywords_; }

    Result<Changes> refresh() override;
    int notify_fd() const override;
    Result<uint32_t> first_unseen() override;
    Status claim_recent() override;
    bool is_recent(uint32_t uid) const override;
    uint32_t recent_count() const override;

    Status for_each(std::span<const uint32_t> uids, uint32_t fields,
                    const std::function<void(const MessageData&)>& fn) override;
    Result<std::unique_ptr<MessageBody>> open_body(uint32_t uid) override;

    Result<StoreResult> store_flags(std::span<const uint32_t> uids, FlagOp op, const Flags& flags,
                                    std::optional<uint64_t> unchanged_since) override;
    Result<Changes> expunge(std::optional<std::span<const uint32_t>> only) override;
    Result<std::unique_ptr<MessageWriter>> append() override;
    Result<CopyResult> copy(std::span<const uint32_t> uids, const std::string& dest_folder) override;
    Result<CopyResult> move(std::span<const uint32_t> uids, const std::string& dest_folder, Changes& expunged) override;
    Result<std::vector<uint32_t>> vanished_since(uint64_t modseq, bool& complete) override;
    std::string unique_id(uint32_t uid) const override;

private:
    MaildirMailbox() = default;
    // Reads the folder's header (counts, UIDNEXT, ...) as of now: what
    // open() reports.  The records are not read.
    Status read_header();
    void use_header(const IndexMeta& m);  // what read_header() read
    // The view is read from the records at its first use, not at open():
    // SELECT and STATUS answer from the folder's counts.  It is rebuilt as
    // the session was told at open() (see maildir_mailbox.cpp).
    void load_view() const;
    Status read_view() const;
    uint32_t exists() const { return view_loaded_ ? static_cast<uint32_t>(view_.size()) : static_cast<uint32_t>(counts_.messages); }
    // Claims UIDs up to `upto` as this session's \Recent ones.
    Status claim_up_to(uint32_t upto);
    // Remembers UIDs from..upto (`taken` messages) as claimed by this session.
    void note_claim(uint32_t from, uint32_t upto, uint64_t taken);
    Result<Changes> update_view();
    Result<CopyResult> copy_messages(std::span<const uint32_t> uids, const std::string& dest_folder,
                                     bool enforce_quota);
    // Whether copies of these UIDs fit in the quota (an error saying kOverQuota if not).
    Status check_quota(const std::vector<uint32_t>& uids);
    // Removes the given UIDs (files and records); updates the view.
    Result<Changes> remove(const std::vector<uint32_t>& uids);

    std::string name_;
    bool read_only_ = false;
    FolderContext context_;
    std::shared_ptr<FolderIndex> index_;
    mutable std::unique_ptr<ChangeSubscription> watch_;  // made by the first notify_fd()
    mutable bool view_loaded_ = false;
    mutable std::vector<ViewEntry> view_;
    // Changed between open() and the view's loading: reported by the next refresh().
    mutable std::vector<uint32_t> pending_flag_changes_;
    mutable uint64_t total_size_ = 0;
    FolderCounts counts_;  // as of open(): status() until the view is loaded
    std::optional<FirstUnseen> first_unseen_;  // as of open(), when the header had it
    std::vector<std::string> keywords_;
    uint32_t uidvalidity_ = 0;
    uint32_t uidnext_ = 1;
    uint64_t highestmodseq_ = 0;
    // \Recent: the folder's claim mark at open(); what this session claimed
    // (ascending ranges of UIDs) once claim_recent() was called.
    uint32_t recent_floor_ = 0;
    bool claiming_ = false;
    std::vector<std::pair<uint32_t, uint32_t>> claimed_;
    uint64_t claimed_messages_ = 0;  // recent_count() until the view is loaded
};

// Writes an APPEND / delivery into a folder's tmp/ and adopts it on commit.
// Also used by the Store for folders that are not open.  base: the file's
// chosen base name (a delivery's unique_name), "" for a fresh one;
// into_new: a delivery (Incoming::into_new).
Result<std::unique_ptr<MessageWriter>> begin_message(std::shared_ptr<FolderIndex> index, FolderContext context,
                                                     std::string base = "", bool into_new = false);
// Store::publish for writers made by begin_message (see mailstore.hpp).
void publish_messages(std::span<MessageWriter* const> writers, std::vector<std::function<Status()>>& syncs);

}  // namespace tern::mailstore
