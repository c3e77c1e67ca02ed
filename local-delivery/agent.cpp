// The local delivery agent: see agent.hpp.
#include "local-delivery/agent.hpp"

#include <sys/time.h>

#include <cstdio>

#include "lib/ipc/message.hpp"
#include "lib/log/log.hpp"
#include "lib/maildrop/maildrop.hpp"
#include "lib/tables/address.hpp"
#include "local-delivery/command.hpp"
#include "local-delivery/mailbox.hpp"
#include "local-delivery/message.hpp"

namespace tern::local {
namespace {

double now_seconds() {
    struct timeval tv {};
    ::gettimeofday(&tv, nullptr);
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

// "rfc822;alice@example.org" → "alice@example.org" (RFC 3461 4.2 ORCPT).
std::string orcpt_address(const std::string& orcpt) {
    auto semi = orcpt.find(';');
    return semi == std::string::npos ? orcpt : orcpt.substr(semi + 1);
}

const char* status_word(delivery::Outcome o) {
    switch (o) {
        case delivery::Outcome::Delivered: return "sent";
        case delivery::Outcome::Deferred: return "deferred";
        case delivery::Outcome::Bounced: return "bounced";
    }
    return "deferred";
}

// Postfix's delay style (delay_logging_resolution_limit = 2): "0.12",
// "1.2", "12", "0" — at most two decimals, trailing zeros dropped.
std::string fmt_delay(double seconds) {
    char buf[32];
    if (!(seconds > 0)) return "0";
    if (seconds >= 10) {
        std::snprintf(buf, sizeof buf, "%.0f", seconds);
        return buf;
    }
    std::snprintf(buf, sizeof buf, "%.2f", seconds);
    std::string out = buf;
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
    return out;
}

int rank(delivery::Outcome o) {
    return o == delivery::Outcome::Deferred ? 2 : o == delivery::Outcome::Bounced ? 1 : 0;
}

}  // namespace

void Agent::refresh_tables() { (void)tables_.reload_if_changed(); }

std::vector<delivery::Response> Agent::handle(const std::vector<const delivery::Request*>& requests) {
    refresh_tables();
    double received = now_seconds();
    GroupCommit batch(pool_);
    std::vector<RecipientWork> work;
    std::vector<Result<QueuedMessage>> bodies;  // read once per request; work points into them
    bodies.reserve(requests.size());
    for (const delivery::Request* request : requests) {
        bodies.push_back(request->inline_body   ? Result<QueuedMessage>(inline_message(request->body_text))
                         : request->body.valid() ? read_queued(request->body.get())
                                                 : Result<QueuedMessage>(make_error("no message body")));
        for (const auto& rcpt : request->recipients)
            work.push_back(start_recipient(*request, bodies.back(), rcpt, batch));
    }
    batch.commit();
    double end = now_seconds();

    std::vector<delivery::Response> responses(requests.size());
    size_t next = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
        const delivery::Request& request = *requests[i];
        delivery::Response& response = responses[i];
        response.queue_id = request.queue_id;
        for (size_t r = 0; r < request.recipients.size(); ++r) {
            const RecipientWork& w = work[next++];
            const delivery::RequestRecipient& rcpt = *w.rcpt;
            DeliveryResult result = finish_recipient(w, batch);
            std::string orig = orcpt_address(rcpt.orcpt);
            std::string orig_part = orig.empty() || tables::lowercase(orig) == tables::lowercase(rcpt.address)
                                        ? ""
                                        : ", orig_to=<" + orig + ">";
            double delay = request.arrival > 0 ? end - static_cast<double>(request.arrival) : end - received;
            double before = request.arrival > 0 ? received - static_cast<double>(request.arrival) : 0;
            log::info("%s: to=<%s>%s, relay=local, delay=%s, delays=%s/%s/0/%s, dsn=%s, status=%s (%s)",
                      request.queue_id.c_str(), rcpt.address.c_str(), orig_part.c_str(), fmt_delay(delay).c_str(),
                      fmt_delay(before).c_str(), fmt_delay(w.start - received).c_str(),
                      fmt_delay(end - w.start).c_str(), result.dsn.c_str(), status_word(result.outcome),
                      result.text.c_str());
            response.results.push_back({rcpt.index, result.outcome, result.dsn, result.text});
        }
    }
    return responses;
}

Agent::RecipientWork Agent::start_recipient(const delivery::Request& request, const Result<QueuedMessage>& body,
                                            const delivery::RequestRecipient& rcpt, GroupCommit& batch) {
    RecipientWork w;
    w.request = &request;
    w.rcpt = &rcpt;
    w.start = now_seconds();
    if (!body) {
        w.result = DeliveryResult::defer("4.3.0", body.message());
        return w;
    }
    std::string recipient = tables::lowercase(rcpt.address);
    if (has_delivered_to(*body, recipient)) {
        w.result = DeliveryResult::bounce("5.4.6", "mail forwarding loop for " + rcpt.address);
        return w;
    }

    Resolver resolver(tables_, settings_);
    Resolution res = resolver.resolve(rcpt.address);
    if (res.failure) {
        w.result = *res.failure;
        return w;
    }

    std::string prefix = delivery_headers(request.sender, recipient);
    std::vector<std::string> forwards;
    for (const auto& dest : res.destinations) {
        if (dest.kind == DestKind::Forward) {
            forwards.push_back(dest.path);
            continue;
        }
        w.parts.push_back(deliver_to(request, *body, dest, rcpt.index, recipient, prefix, batch));
    }
    if (!forwards.empty()) w.parts.push_back(Part{forward(request, *body, forwards, recipient), 0, ""});
    return w;
}

DeliveryResult Agent::finish_recipient(const RecipientWork& w, const GroupCommit& batch) const {
    if (w.result) return *w.result;
    DeliveryResult worst = DeliveryResult::sent("");
    std::vector<std::string> texts;
    for (const auto& part : w.parts) {
        DeliveryResult r = part.result ? *part.result : batch.result(part.ticket);
        if (!r.delivered())
            log::debug("%s: %s via %s: %s", w.request->queue_id.c_str(), w.rcpt->address.c_str(),
                       part.via.c_str(), r.text.c_str());
        if (rank(r.outcome) > rank(worst.outcome)) worst = r;
        if (r.delivered() || rank(r.outcome) == rank(worst.outcome)) texts.push_back(r.text);
    }
    if (worst.delivered()) {
        // One text for the log and the DSN: the distinct things that happened.
        std::string text;
        for (const auto& t : texts)
            if (text.find(t) == std::string::npos) text += (text.empty() ? "" : ", ") + t;
        return DeliveryResult::sent(text);
    }
    return worst;
}

Agent::Part Agent::deliver_to(const delivery::Request& request, const QueuedMessage& body, const Destination& dest,
                              uint32_t index, const std::string& recipient, const std::string& prefix,
                              GroupCommit& batch) {
    maildir::DeliveryKey key{request.arrival, request.queue_id, index, request.maybe_delivered};
    MessageRef message{&body, request.sender, prefix, request.arrival > 0 ? &key : nullptr};
    Part part;
    part.via = dest.via.empty() ? dest.path : dest.via;
    switch (dest.kind) {
        case DestKind::Mailbox: {
            MboxTarget t{dest.path, dest.as, true, settings_.mailbox_size_limit, settings_.lock};
            part.result = deliver_mbox(t, message);
            return part;
        }
        case DestKind::File: {
            MboxTarget t{dest.path, dest.as, false, settings_.mailbox_size_limit, settings_.lock};
            part.result = deliver_mbox(t, message);
            return part;
        }
        case DestKind::HomeMaildir:
        case DestKind::FileMaildir:
        case DestKind::VirtualMailbox: {
            std::string dir = dest.path;
            uint64_t quota = 0;
            if (dest.kind == DestKind::VirtualMailbox) quota = dest.quota;
            else
                while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
            auto outcome = deliver_maildir(MaildirTarget{dir, dest.as, quota, settings_.mailbox_size_limit}, message,
                                           stores_, batch);
            part.result = std::move(outcome.result);
            part.ticket = outcome.ticket;
            return part;
        }
        case DestKind::Command: {
            CommandJob job;
            job.command = dest.path;
            job.as = dest.as;
            job.prefix = prefix;
            job.body = &body;
            job.time_limit = settings_.command_time_limit;
            auto parts = tables::split_address(dest.address);
            std::string local = tables::lowercase(parts.local);
            job.env = {"SENDER=" + request.sender,
                       "RECIPIENT=" + dest.address,
                       "ORIGINAL_RECIPIENT=" + recipient,
                       "LOCAL=" + local,
                       "DOMAIN=" + parts.domain,
                       "EXTENSION=" + tables::extension_of(local, settings_.delimiters)};
            part.result = run_command(job);
            return part;
        }
        case DestKind::Forward:
            break;
    }
    part.result = DeliveryResult::defer("4.3.0", "internal error: unknown destination");
    return part;
}

DeliveryResult Agent::forward(const delivery::Request& request, const QueuedMessage& body,
                              const std::vector<std::string>& addresses, const std::string& recipient) {
    maildrop::Envelope env;
    env.time = static_cast<int64_t>(std::time(nullptr));
    env.uid = ::getuid();
    env.sender = request.sender;  // aliases keep the original sender (RFC 5321 3.9.1)
    env.recipients = addresses;
    std::string dir = settings_.queue_directory + "/maildrop";
    // As root, write as the queue's own user so pickup can read and remove it.
    std::optional<AsUser> as;
    if (running_as_root()) {
        auto who = lookup_identity(settings_.default_user);
        if (who) as.emplace(*who);
    }
    auto writer = maildrop::Writer::create(dir, env);
    if (!writer) return DeliveryResult::defer("4.3.0", "cannot forward: " + writer.message());
    auto copied = copy_message(body, delivery_headers(request.sender, recipient, false),
                               [&](std::string_view piece) { return writer->write(piece); });
    if (!copied) return DeliveryResult::defer("4.3.0", "cannot forward: " + copied.message());
    auto name = writer->commit();
    if (!name) return DeliveryResult::defer("4.3.0", "cannot forward: " + name.message());
    as.reset();
    // Best effort: qmgr also scans the maildrop on its own.
    if (auto sock = ipc::connect_unix(settings_.run_directory + "/qmgr.sock"))
        (void)ipc::send_message(sock->get(), ipc::Message("wake"));
    std::string list;
    for (const auto& a : addresses) list += (list.empty() ? "" : ", ") + a;
    return DeliveryResult::sent("forwarded to " + list);
}

}  // namespace tern::local
