// The mail store interface: one user's folders and messages, as imapd,
// pop3d and local-delivery see them.
//
// A Store is opened for one user's mail root and hands out Mailbox handles
// (one per selected folder and session).  Nothing here names a file or a
// directory: the first implementation (maildir_store.hpp) keeps Maildir++
// folders with a per-folder LMDB index, and a later database + object-store
// backend implements the same classes.
//
// Folder names are byte strings handed over by the protocol layer exactly as
// it wants them stored (imapd converts modified UTF-7 / UTF-8 itself); the
// hierarchy separator is kSeparator.  "INBOX" (any case) is the inbox.
//
// Messages are addressed by UID (RFC 9051 2.3.1.1).  A Mailbox holds a view:
// the UIDs (ascending, index = sequence number - 1), flags and modseq the
// session has been told about.  refresh() brings the view up to date and
// reports what changed since; the session's own store/expunge calls update
// the view at once and are not reported again.  Sizes: `size` is the stored
// byte count (LF line ends), `crlf_size` the exact size with CRLF line ends
// that RFC822.SIZE reports.
//
// Threading: a Store and its Mailboxes belong to one thread.  Several
// processes may open the same folder; the implementation serialises their
// changes (UIDs are never assigned twice).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/result.hpp"

namespace tern::mailstore {

inline constexpr char kSeparator = '/';
inline constexpr std::string_view kInbox = "INBOX";

// System flags (RFC 9051 2.3.2) as bits.  \Recent is not a stored flag
// (IMAP4rev2 dropped it): the store keeps the highest UID a session has
// claimed (Mailbox::claim_recent()) and each Mailbox says which are recent.
enum SystemFlag : uint8_t {
    kSeen = 1 << 0,
    kAnswered = 1 << 1,
    kFlagged = 1 << 2,
    kDeleted = 1 << 3,
    kDraft = 1 << 4,
};
inline constexpr uint8_t kAllSystemFlags = 0x1f;

// Keywords are per-mailbox: bit i of a keyword mask is Mailbox::keywords()[i].
inline constexpr size_t kMaxKeywords = 64;

struct Flags {
    uint8_t system = 0;  // SystemFlag bits
    std::vector<std::string> keywords;
};

// RFC 6154 SPECIAL-USE.
enum class SpecialUse : uint8_t { None, All, Archive, Drafts, Flagged, Junk, Sent, Trash };
std::string_view special_use_name(SpecialUse use);  // "\\Sent", "" for None

struct FolderInfo {
    std::string name;  // full name, kSeparator between levels; "INBOX" for the inbox
    SpecialUse special_use = SpecialUse::None;
    bool subscribed = false;
    bool has_children = false;
    bool selectable = true;  // false: exists only as a parent of other folders (\Noselect)
};

struct MailboxStatus {
    uint32_t uidvalidity = 0;
    uint32_t uidnext = 1;
    uint64_t highestmodseq = 1;
    uint32_t messages = 0;
    uint32_t unseen = 0;
    uint32_t deleted = 0;
    uint64_t size = 0;  // RFC 8438 STATUS=SIZE: sum of crlf_size
    uint32_t recent = 0;  // RFC 3501 2.3.2 (see Mailbox::recent_count())
};

// What SELECT answers about a folder (RFC 9051 6.3.2): its status,
// \Recent count (in status), first unseen message (0: none) and keywords.
struct OpenAnswer {
    MailboxStatus status;
    uint32_t first_unseen = 0;
    std::vector<std::string> keywords;
};

// What SELECT answers, told before open() has done all its work, where
// the store knows it early:
//  * a folder's first index build, before it writes the records: it holds
//    the index's write lock from its listing of the folder to its synced
//    commit, so no other writer comes between, and the figures are those
//    the Mailbox it returns will show;
//  * a folder whose index is not open in this process (a cold one), from
//    the index's last commit, before its database is opened, when the
//    folder's directories say that commit is the folder's state.  The
//    Mailbox starts from what was told; a writer's change since is news
//    for its next refresh().
// The answer names no UID (only UIDNEXT, UIDVALIDITY and counts): the
// caller must not run another command until open() has returned.  If
// open() then fails, the caller must end the session (the client was told
// of a state it cannot use, or one that was never stored).
using EarlyAnswer = std::function<void(const OpenAnswer&)>;

// One message in a Mailbox's view (kept in memory; FETCH FLAGS needs nothing else).
struct ViewEntry {
    uint32_t uid = 0;
    uint8_t flags = 0;  // SystemFlag bits
    uint64_t keywords = 0;
    uint64_t modseq = 0;
};

// Which parts of MessageData for_each() must fill: ask only for what you use.
enum Field : uint32_t {
    kFieldSizes = 1 << 0,          // size, crlf_size
    kFieldInternalDate = 1 << 1,
    kFieldEnvelope = 1 << 2,       // IMAP ENVELOPE string
    kFieldBodyStructure = 1 << 3,  // BODYSTRUCTURE (with extension data)
    kFieldBody = 1 << 4,           // BODY (without extension data)
    kFieldHeaders = 1 << 5,        // cached header fields, see cached_header_fields()
};

// What the store knows about one message without reading its body.  The
// string_views point into the store and are valid only inside the
// for_each() callback.
struct MessageData {
    uint32_t uid = 0;
    uint8_t flags = 0;
    uint64_t keywords = 0;
    uint64_t modseq = 0;
    uint64_t size = 0;       // stored bytes (LF line ends)
    uint64_t crlf_size = 0;  // RFC822.SIZE
    int64_t internal_date = 0;  // seconds since the epoch (UTC)
    int internal_date_offset = 0;  // minutes east of UTC for the date-time zone
    std::string_view envelope;       // "(\"date\" \"subject\" ...)"
    std::string_view bodystructure;  // "(\"TEXT\" \"PLAIN\" ...)"
    std::string_view body;
    // The cached header lines ("Name: value\n", unfolded order kept as in the
    // message, LF line ends) of the fields named by cached_header_fields().
    std::string_view headers;
};

// Header fields whose raw lines the index caches (lower case).  A
// HEADER.FIELDS request naming only these can be answered from
// MessageData::headers without opening the message.
std::span<const std::string_view> cached_header_fields();

// A message's stored bytes, mapped read-only.  LF line ends: the protocol
// layer converts to CRLF (see lib/mime/section.hpp).
class MessageBody {
public:
    virtual ~MessageBody() = default;
    virtual std::string_view bytes() const = 0;
    virtual int fd() const = 0;  // -1 when the backend has no file
};

// Writes one new message (APPEND, delivery) in pieces; nothing is visible
// until commit().  Input may have CRLF or LF line ends: CRLF is stored as LF.
class MessageWriter {
public:
    virtual ~MessageWriter() = default;
    virtual Status write(std::string_view data) = 0;
    // Stores the message with these flags and internal date (0 = now) and
    // returns its UID.  The Mailbox's view learns of it at the next refresh().
    virtual Result<uint32_t> commit(const Flags& flags, int64_t internal_date = 0, int date_offset = 0) = 0;
    // After commit() of a delivery with a unique_name (DeliveryOptions):
    // true when that name was stored already (an earlier attempt whose
    // result was lost).  Nothing new was stored; commit() returned 0.
    virtual bool earlier() const { return false; }

    // Group commit (local-delivery): commit() in steps, so that many
    // deliveries share the costly ones.
    //   1. stage(flags): the message is complete; nothing durable or visible.
    //   2. data_sync(): a job that makes its bytes durable.  Jobs need no
    //      privileges and are independent: run many at once (sys::SyncPool).
    //   3. Store::publish() of the staged writers: one index transaction
    //      per folder; it returns the jobs that make the folders durable.
    //   4. After those jobs: result() is what commit() would have returned
    //      (and earlier() is set).  A failed job fails its folder's writers.
    virtual Status stage(const Flags& flags) = 0;
    virtual std::function<Status()> data_sync() = 0;
    virtual Result<uint32_t> result() const = 0;
};

// A delivery into one folder (local-delivery; a Sieve fileinto later).
struct DeliveryOptions {
    std::string folder = std::string(kInbox);  // created when missing
    // The delivery's stable name, "" for a fresh one.  The same name always
    // means the same message: committing a name the folder holds already
    // stores nothing and reports it (MessageWriter::earlier()).  Bytes:
    // [0-9A-Za-z._-] and the backend's own escapes; no ',', ':' or '/'.
    std::string unique_name;
    // The result of an earlier attempt with this name may have been lost:
    // look for its copy first, also after a reader changed its flags.
    bool maybe_delivered = false;
    // That look accepts any name starting with the first retry_match bytes
    // of unique_name (0: the whole name), e.g. whatever host wrote it.
    size_t retry_match = 0;
    // Bytes about to be written, checked against the quota before writing.
    uint64_t expected_size = 0;
};

struct DeliveryStart {
    enum class Outcome : uint8_t {
        Write,          // write the message into `writer` and commit it
        AlreadyStored,  // maybe_delivered found the earlier copy: nothing to do
        OverQuota,      // expected_size does not fit the quota (RFC 3463 5.2.2)
    };
    Outcome outcome = Outcome::Write;
    std::unique_ptr<MessageWriter> writer;  // for Write
};

// What refresh() (or expunge()) found changed since the view was last updated.
struct Changes {
    bool uidvalidity_changed = false;  // the view was reset; the session must say so (or disconnect)
    // Expunged messages as UIDs and as their sequence numbers in the view
    // before the change (both ascending).  An IMAP session sends EXPUNGE
    // responses for seqs in descending order (each one shifts those after it).
    std::vector<uint32_t> expunged_uids;
    std::vector<uint32_t> expunged_seqs;
    uint32_t exists = 0;                // message count after the change
    std::vector<uint32_t> new_uids;     // appended to the view
    std::vector<uint32_t> flag_changes; // UIDs (still in the view) whose flags/keywords/modseq changed
    bool keywords_changed = false;      // a keyword was added to the mailbox's keyword list
    bool any() const {
        return uidvalidity_changed || !expunged_uids.empty() || !new_uids.empty() || !flag_changes.empty() ||
               keywords_changed;
    }
};

enum class FlagOp : uint8_t { Add, Remove, Replace };

struct StoreResult {
    std::vector<uint32_t> changed;   // UIDs whose flags changed (their ViewEntry has the new modseq)
    std::vector<uint32_t> modified;  // CONDSTORE: UIDs refused because modseq > unchangedsince (RFC 7162 3.1.3)
    bool keywords_changed = false;   // a new keyword joined keywords() (IMAP: send FLAGS / PERMANENTFLAGS)
};

struct CopyResult {
    uint32_t dest_uidvalidity = 0;
    std::vector<uint32_t> source_uids;  // RFC 4315 COPYUID: pairs source_uids[i] → dest_uids[i]
    std::vector<uint32_t> dest_uids;
};

class Mailbox {
public:
    virtual ~Mailbox() = default;

    virtual const std::string& name() const = 0;
    virtual MailboxStatus status() const = 0;  // of the view
    virtual bool read_only() const = 0;

    // The view: entries in sequence order (UIDs ascending).
    virtual std::span<const ViewEntry> view() const = 0;
    // A hint that the view will be wanted soon (after SELECT, clients fetch
    // the flags): a backend may start reading it in the background.
    virtual void expect_view() const {}
    // Sequence number (1-based) of uid in the view, 0 when absent.
    uint32_t seq_of(uint32_t uid) const;
    const ViewEntry* entry(uint32_t uid) const;

    // Sequence number of the first message without \Seen, 0 when none
    // (RFC 3501 6.3.1 UNSEEN).
    virtual Result<uint32_t> first_unseen();

    // RFC 3501 2.3.2 \Recent.  claim_recent() makes this Mailbox the one
    // session that sees the messages that arrived since the last claim as
    // recent, and later refresh() calls claim new arrivals for it too;
    // exactly one claiming session sees each message as recent.  A Mailbox
    // that does not claim (EXAMINE, STATUS) sees the unclaimed ones as
    // recent without taking them.
    virtual Status claim_recent() { return {}; }
    virtual bool is_recent(uint32_t) const { return false; }
    virtual uint32_t recent_count() const { return 0; }

    // The mailbox's keyword list (bit i of a keyword mask = keywords()[i]).
    virtual const std::vector<std::string>& keywords() const = 0;

    // Brings the view up to date with the store (new messages, expunges,
    // flag changes by other sessions, processes or tools).
    virtual Result<Changes> refresh() = 0;
    // Readable when refresh() may have something to report (a delivery or a
    // change by another process); -1 when the backend cannot tell.  refresh()
    // drains it.  The notice arrives within a second of the change.  Watching
    // starts with the first call (for IDLE: a session that only runs commands
    // refreshes at their boundaries and needs no notices); call refresh()
    // after it, which finds the changes made before.
    virtual int notify_fd() const = 0;

    // Reads the cached data of the given UIDs (ascending; absent ones are
    // skipped) in one consistent snapshot and calls fn for each.
    virtual Status for_each(std::span<const uint32_t> uids, uint32_t fields,
                            const std::function<void(const MessageData&)>& fn) = 0;
    virtual Result<std::unique_ptr<MessageBody>> open_body(uint32_t uid) = 0;

    // Changes flags of the given UIDs.  unchanged_since (CONDSTORE) refuses
    // messages whose modseq is higher.  Each changed message gets a new modseq.
    virtual Result<StoreResult> store_flags(std::span<const uint32_t> uids, FlagOp op, const Flags& flags,
                                            std::optional<uint64_t> unchanged_since = std::nullopt) = 0;

    // Removes messages flagged \Deleted (only those in `only` when given: UID
    // EXPUNGE).  The view is updated; the result says what went.
    virtual Result<Changes> expunge(std::optional<std::span<const uint32_t>> only = std::nullopt) = 0;

    virtual Result<std::unique_ptr<MessageWriter>> append() = 0;
    virtual Result<CopyResult> copy(std::span<const uint32_t> uids, const std::string& dest_folder) = 0;
    // copy + expunge of the sources (RFC 6851); `expunged` lists what left this view.
    virtual Result<CopyResult> move(std::span<const uint32_t> uids, const std::string& dest_folder,
                                    Changes& expunged) = 0;

    // UIDs expunged since modseq (QRESYNC VANISHED, RFC 7162 3.2.5.1), as far
    // as the store remembers; `complete` false when older ones were forgotten.
    virtual Result<std::vector<uint32_t>> vanished_since(uint64_t modseq, bool& complete) = 0;

    // POP3 UIDL (RFC 1939): stable for the message's life, same for every session.
    virtual std::string unique_id(uint32_t uid) const = 0;
};

// The user's quota (one quota root over all folders).  bytes counts stored
// bytes (LF line ends), the figure the quota is enforced on; an APPEND or
// COPY that would pass limit_bytes fails with an error whose text contains
// kOverQuota.  MOVE within the store does not change the usage.
struct QuotaUsage {
    uint64_t bytes = 0;
    uint64_t messages = 0;
    uint64_t limit_bytes = 0;  // 0 = no quota
};
inline constexpr std::string_view kOverQuota = "over quota";

class Store {
public:
    virtual ~Store() = default;

    virtual Result<std::vector<FolderInfo>> list_folders() = 0;
    virtual Result<bool> exists(const std::string& name) = 0;  // selectable folder (IMAP: NONEXISTENT)
    virtual Status create_folder(const std::string& name, SpecialUse use = SpecialUse::None) = 0;
    // Deleting INBOX is refused; a folder with children keeps existing as \Noselect.
    virtual Status delete_folder(const std::string& name) = 0;
    // Renames the folder and its children; renaming INBOX moves its messages
    // into the new folder and leaves INBOX empty (RFC 9051 6.3.6).
    virtual Status rename_folder(const std::string& from, const std::string& to) = 0;
    virtual Status subscribe(const std::string& name, bool on) = 0;
    virtual Result<std::vector<std::string>> subscriptions() = 0;

    // Creates INBOX and Drafts, Sent, Trash, Junk, Archive (with their
    // SPECIAL-USE attribute, subscribed) when missing.  For a new user.
    virtual Status create_default_folders() = 0;

    // claim_recent: the caller will call claim_recent() next (SELECT); an
    // open that writes the index anyway (a folder's first SELECT) takes the
    // claim in its own last transaction, which saves a commit and its sync.
    // early: see EarlyAnswer (called at most once, from inside open()).
    virtual Result<std::unique_ptr<Mailbox>> open(const std::string& name, bool read_only = false,
                                                  bool claim_recent = false, const EarlyAnswer* early = nullptr) = 0;
    // STATUS without selecting (brings the folder's index up to date).
    virtual Result<MailboxStatus> status(const std::string& name) = 0;
    virtual Result<QuotaUsage> quota_usage() = 0;

    // Starts a delivery (see DeliveryOptions).  The index learns the message
    // (UID, sizes, cached envelope) at commit(), which returns only after
    // the message and its index entry are on disk.
    virtual Result<DeliveryStart> begin_delivery(const DeliveryOptions& options) = 0;
    // Group commit, step 3 (see MessageWriter): stores staged writers that
    // came from this Store's begin_delivery() and whose data_sync() job
    // succeeded, one index transaction per folder; adds to `syncs` the jobs
    // that make the folders' entries and indexes durable.  Runs with the
    // mailbox owner's privileges, like begin_delivery().  A writer that
    // cannot be stored gets its error in result().
    virtual void publish(std::span<MessageWriter* const> writers, std::vector<std::function<Status()>>& syncs) = 0;
};

// Normalises an INBOX name: "inbox" → "INBOX", "Inbox/x" → "INBOX/x".
std::string canonical_name(std::string_view name);

}  // namespace tern::mailstore
