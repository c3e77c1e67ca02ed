// Maildrop pickup (see pickup.hpp).
#include "qmgr/pickup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "lib/core/errno_text.hpp"
#include "lib/dsn/report.hpp"
#include "lib/log/log.hpp"
#include "lib/maildrop/maildrop.hpp"
#include "lib/sys/clock.hpp"

namespace tern::qmgr {

namespace {

constexpr int64_t kStaleTempAge = 86400;  // no sendmail takes a day to write a message

std::string qualify(const std::string& address, const std::string& origin) {
    if (address.empty() || address.find('@') != std::string::npos || origin.empty()) return address;
    return address + "@" + origin;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// RFC 5322 3.2.4 quoted-string for a display name.
std::string quoted_phrase(std::string_view name) {
    std::string out = "\"";
    for (char c : name) {
        if (c == '\n' || c == '\r') continue;
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// Writes the message into the body file, line by line: CRLF becomes LF,
// and at the end of the header section the missing headers are inserted.
class BodyWriter {
public:
    BodyWriter(int fd, std::string missing_from, std::string message_id, std::string date)
        : fd_(fd), from_(std::move(missing_from)), message_id_(std::move(message_id)), date_(std::move(date)) {}

    Status put(std::string_view data) {
        for (char c : data) {
            line_ += c;
            if (c == '\n') {
                if (auto st = line(); !st) return st;
            } else if (line_.size() > 1000000 && !in_headers_) {
                // No line break for a long stretch: pass it on as is.
                if (auto st = emit(line_); !st) return st;
                line_.clear();
            }
        }
        return {};
    }

    Status finish() {
        if (!line_.empty()) {
            line_ += '\n';  // the queue stores complete lines
            if (auto st = line(); !st) return st;
        }
        if (in_headers_) {
            if (auto st = end_headers(); !st) return st;
        }
        return flush();
    }

    uint64_t size() const { return size_; }
    const std::string& message_id() const { return seen_message_id_; }

private:
    Status line() {
        if (line_.size() >= 2 && line_[line_.size() - 2] == '\r') line_.erase(line_.size() - 2, 1);
        std::string l;
        l.swap(line_);
        if (!in_headers_) return emit(l);
        if (l == "\n") return end_headers();
        bool continuation = !l.empty() && (l.front() == ' ' || l.front() == '\t');
        size_t colon = l.find(':');
        // RFC 5322 2.2: a field name (no white space), then ':'.
        bool header = continuation || (colon != std::string::npos && colon > 0 && l.find_first_of(" \t") > colon);
        if (!header) {
            // The body started without a blank line: supply one.
            if (auto st = end_headers(); !st) return st;
            return emit(l);
        }
        if (!continuation) {
            std::string name = lower(std::string_view(l).substr(0, colon));
            if (name == "from") has_from_ = true;
            if (name == "date") has_date_ = true;
            if (name == "message-id") {
                has_message_id_ = true;
                std::string v = l.substr(colon + 1);
                while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
                while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.erase(0, 1);
                seen_message_id_ = v.substr(0, 200);
            }
        }
        return emit(l);
    }

    Status end_headers() {
        in_headers_ = false;
        std::string added;
        if (!has_from_ && !from_.empty()) added += "From: " + from_ + "\n";
        if (!has_date_) added += "Date: " + date_ + "\n";
        if (!has_message_id_) {
            added += "Message-ID: " + message_id_ + "\n";
            seen_message_id_ = message_id_;
        }
        added += "\n";
        return emit(added);
    }

    Status emit(std::string_view s) {
        buffer_ += s;
        size_ += s.size();
        return buffer_.size() >= 65536 ? flush() : Status{};
    }

    Status flush() {
        std::string_view rest = buffer_;
        while (!rest.empty()) {
            ssize_t n = ::write(fd_, rest.data(), rest.size());
            if (n < 0) {
                if (errno == EINTR) continue;
                return errno_error("write queue body");
            }
            rest.remove_prefix(static_cast<size_t>(n));
        }
        buffer_.clear();
        return {};
    }

    int fd_;
    std::string from_, message_id_, date_;
    std::string line_, buffer_;
    bool in_headers_ = true;
    bool has_from_ = false, has_date_ = false, has_message_id_ = false;
    std::string seen_message_id_;
    uint64_t size_ = 0;
};

}  // namespace

Pickup::Pickup(const config::Config& config, queue::Store& store)
    : store_(store),
      maildrop_dir_(config.get("queue_directory") + "/maildrop"),
      corrupt_dir_(config.get("queue_directory") + "/corrupt"),
      myhostname_(config.get("myhostname")),
      myorigin_(config.get("myorigin")),
      data_directory_(config.get("data_directory")),
      message_limit_(config.get_int("sendmail_message_limit")),
      recipient_limit_(config.get_int("sendmail_recipient_limit")) {
    limits_.unit_seconds = std::max<int64_t>(1, config.get_duration("sendmail_limit_window").count());
    limits_.block_seconds = config.get_duration("sendmail_block_time").count();
    for (const auto& word : config.get_list("sendmail_limit_exempt_uids")) {
        char* end = nullptr;
        unsigned long v = std::strtoul(word.c_str(), &end, 10);
        if (end && *end == '\0' && !word.empty())
            exempt_.insert(static_cast<uid_t>(v));
        else
            log::warning("sendmail_limit_exempt_uids: '%s' is not a uid, ignored", word.c_str());
    }
}

bool Pickup::held(const std::string& name, uid_t uid, size_t recipients) {
    if (exempt_.count(uid) || (message_limit_ <= 0 && recipient_limit_ <= 0)) return false;
    if (!store_limits_) {
        auto store = policy::LimitsStore::open(data_directory_);
        if (!store) {
            // Mail keeps flowing; the limits are off until the store opens.
            if (!store_warned_) log::warning("sendmail limits not applied: %s", store.message().c_str());
            store_warned_ = true;
            return false;
        }
        store_limits_ = std::move(*store);
    }
    int64_t now = sys::now_s();
    std::string key = std::to_string(uid);
    auto blocked = store_limits_->blocked(policy::Kind::Uid, key, now);
    if (blocked && *blocked) return true;  // logged when the block began
    policy::Verdict verdict;
    auto m = store_limits_->count_message(policy::Kind::Uid, key, message_limit_, limits_, now);
    if (m) verdict = *m;
    if (m && verdict.allowed) {
        auto r = store_limits_->count_recipients(policy::Kind::Uid, key, static_cast<long long>(recipients),
                                                 recipient_limit_, limits_, now);
        if (r) verdict = *r;
        else m = r;
    }
    if (!m) {
        log::warning("sendmail limits of uid %s: %s", key.c_str(), m.message().c_str());
        return false;
    }
    if (verdict.new_block)
        log::warning("maildrop file %s: uid %s over the sendmail limit (%s): held in the maildrop, uid blocked "
                     "for %llds (mailctl block clear %s lifts it)",
                     name.c_str(), key.c_str(), verdict.new_block->reason.c_str(),
                     static_cast<long long>(limits_.block_seconds), key.c_str());
    return !verdict.allowed;
}

size_t Pickup::run() {
    auto names = maildrop::list(maildrop_dir_);
    if (!names) {
        // No maildrop directory: nobody can use sendmail, nothing to pick up.
        return 0;
    }
    for (const auto& name : maildrop::stale_temp_files(maildrop_dir_, kStaleTempAge)) {
        std::string path = maildrop_dir_ + "/" + name;
        if (::unlink(path.c_str()) == 0) log::info("removed stale maildrop temporary file %s", name.c_str());
    }
    size_t queued = 0;
    for (const auto& name : *names) {
        auto id = pick(name);
        if (id) ++queued;
    }
    return queued;
}

void Pickup::set_aside(const std::string& name, const std::string& why) {
    ::mkdir(corrupt_dir_.c_str(), 0700);
    std::string from = maildrop_dir_ + "/" + name, to = corrupt_dir_ + "/" + name;
    if (::rename(from.c_str(), to.c_str()) == 0)
        log::warning("maildrop file %s: %s; moved to %s", name.c_str(), why.c_str(), to.c_str());
    else
        log::warning("maildrop file %s: %s; cannot move it aside: %s", name.c_str(), why.c_str(),
                     std::strerror(errno));
}

Result<std::string> Pickup::pick(const std::string& name) {
    std::string path = maildrop_dir_ + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return errno_error("stat " + path);  // picked meanwhile
    if (!S_ISREG(st.st_mode)) {
        set_aside(name, "not a regular file");
        return make_error("not a regular file");
    }
    auto reader = maildrop::Reader::open(path);
    if (!reader) {
        set_aside(name, reader.message());
        return reader.error();
    }
    maildrop::Envelope env = reader->envelope();
    // The file's owner is who really wrote it (sendmail runs as the
    // submitting user); the uid line is only the writer's claim.
    uid_t uid = st.st_uid;
    if (held(name, uid, env.recipients.size())) return make_error("held: uid over the sendmail limit");

    const int64_t now_us = sys::now_us();
    const int64_t now_s = now_us / 1000000;
    std::string id = queue::new_queue_id();
    std::string sender = qualify(env.sender, myorigin_);
    std::string from_header;
    if (!sender.empty())
        from_header = env.fullname.empty() ? sender : quoted_phrase(env.fullname) + " <" + sender + ">";

    auto body = store_.create_body(id);
    if (!body) {
        log::warning("%s: pickup of %s: %s", id.c_str(), name.c_str(), body.message().c_str());
        return body.error();
    }
    std::string body_path = store_.body_path(id);
    auto fail = [&](const Error& e) -> Result<std::string> {
        ::unlink(body_path.c_str());
        log::warning("%s: pickup of %s: %s", id.c_str(), name.c_str(), e.message.c_str());
        return e;
    };

    std::string date = dsn::format_date(now_s);
    std::string received = "Received: from userid " + std::to_string(uid) + " by " + myhostname_ +
                           " (tern sendmail)\n\tid " + id + "; " + date + "\n";
    std::string message_id = "<" + id + "." + std::to_string(now_s) + "@" + myhostname_ + ">";
    BodyWriter writer(body->get(), from_header, message_id, date);
    if (::write(body->get(), received.data(), received.size()) != static_cast<ssize_t>(received.size()))
        return fail(errno_error("write " + body_path));
    for (int guard = 0;; ++guard) {
        auto chunk = reader->read();
        if (!chunk) return fail(chunk.error());
        if (chunk->empty()) break;
        if (auto s = writer.put(*chunk); !s) return fail(s.error());
    }
    if (auto s = reader->finish(); !s) {
        ::unlink(body_path.c_str());
        set_aside(name, s.message());
        return s.error();
    }
    if (auto s = writer.finish(); !s) return fail(s.error());
    if (::fsync(body->get()) != 0) return fail(errno_error("fsync " + body_path));
    auto dir = store_.open_body_dir(id);
    if (!dir) return fail(dir.error());
    if (::fsync(dir->get()) != 0) return fail(errno_error("fsync directory of " + body_path));

    queue::Message m;
    m.envelope.id = id;
    m.envelope.sender = sender;
    m.envelope.arrival_us = now_us;
    m.envelope.size = received.size() + writer.size();
    m.envelope.protocol = "local";
    m.envelope.client_name = "localhost";
    m.envelope.auth_user = "uid=" + std::to_string(uid);
    m.envelope.dsn_ret = env.ret;
    m.envelope.dsn_envid = env.envid;
    for (const auto& r : env.recipients) {
        queue::Recipient rcpt;
        rcpt.notify = env.notify;
        rcpt.address = qualify(r, myorigin_);
        m.recipients.push_back(std::move(rcpt));
    }
    if (auto s = store_.insert({m}); !s) return fail(s.error());
    log::info("%s: uid=%u from=<%s>", id.c_str(), static_cast<unsigned>(uid), sender.c_str());
    log::info("%s: message-id=%s", id.c_str(), writer.message_id().c_str());
    // Only now: the message is safely queued.  A crash before this unlink
    // picks the file up again (a duplicate, never a loss).
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        log::warning("%s: cannot remove maildrop file %s: %s", id.c_str(), name.c_str(), std::strerror(errno));
    return id;
}

}  // namespace tern::qmgr
