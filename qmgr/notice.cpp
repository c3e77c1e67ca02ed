// Enqueueing DSNs (see notice.hpp).
#include "qmgr/notice.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/errno_text.hpp"
#include "lib/sys/clock.hpp"

namespace tern::qmgr {

namespace {

bool is_postmaster(std::string_view address) {
    std::string local(address.substr(0, address.find('@')));
    for (auto& c : local) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return local == "postmaster";
}

}  // namespace

std::optional<std::string> notice_recipient(const queue::Message& original, const NoticeSettings& settings,
                                            std::string* why) {
    const auto& env = original.envelope;
    if (!env.sender.empty()) return env.sender;
    if (!env.is_bounce) {
        if (why) *why = "sender is the null sender <>, no notice sent";
        return std::nullopt;
    }
    // A failed notice to the postmaster would bounce to the postmaster again.
    for (const auto& r : original.recipients)
        if (is_postmaster(r.address)) {
            if (why) *why = "undeliverable notice to the postmaster, discarded";
            return std::nullopt;
        }
    return settings.postmaster;
}

Result<std::string> enqueue_notice(queue::Store& store, const NoticeSettings& settings,
                                   const queue::Message& original, dsn::NoticeKind kind,
                                   const std::vector<dsn::RecipientReport>& recipients,
                                   const std::string& report_to, int64_t now, const std::string& delay_text) {
    const auto& env = original.envelope;
    dsn::ReportInfo info;
    info.kind = kind;
    info.reporting_mta = settings.myhostname;
    info.queue_id = env.id;
    info.original_sender = env.sender;
    info.report_to = report_to;
    info.envid = env.dsn_envid;
    info.arrival = env.arrival_us / 1000000;
    info.now = now;
    info.headers_only = env.dsn_ret == "HDRS";
    info.original_size_limit = settings.original_size_limit;
    info.delay_text = delay_text;

    auto original_body = store.open_body(env.id);
    if (!original_body) return original_body.error();

    std::string id = queue::new_queue_id();
    auto body = store.create_body(id);
    if (!body) return body.error();
    std::string path = store.body_path(id);
    auto fail = [&](Error e) -> Result<std::string> {
        ::unlink(path.c_str());
        return e;
    };
    if (auto st = dsn::write_report(body->get(), info, recipients, original_body->get(), env.size); !st)
        return fail(st.error());
    // Durable before the record exists (queue.hpp's contract).
    if (::fsync(body->get()) != 0) return fail(errno_error("fsync " + path));
    struct stat st {};
    if (::fstat(body->get(), &st) != 0) return fail(errno_error("stat " + path));
    auto dir = store.open_body_dir(id);
    if (!dir) return fail(dir.error());
    if (::fsync(dir->get()) != 0) return fail(errno_error("fsync directory of " + path));

    queue::Message notice;
    notice.envelope.id = id;
    notice.envelope.sender = "";
    notice.envelope.arrival_us = sys::now_us();
    notice.envelope.size = static_cast<uint64_t>(st.st_size);
    notice.envelope.protocol = "local";
    notice.envelope.is_bounce = true;
    queue::Recipient r;
    r.address = report_to;
    // A notice about a notice is not wanted (RFC 3461 6.2).
    r.notify = queue::kNotifyNever;
    notice.recipients.push_back(std::move(r));
    if (auto st2 = store.insert({notice}); !st2) return fail(st2.error());
    return id;
}

}  // namespace tern::qmgr
