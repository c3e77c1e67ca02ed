// MTA-STS policy discovery, fetch and cache (see mta_sts.hpp).
#include "smtp-client/mta_sts.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include <cstdlib>

#include "lib/log/log.hpp"
#include "lib/net/address.hpp"
#include "lib/sys/clock.hpp"
#include "lib/sys/files.hpp"
#include "lib/tls/context.hpp"

namespace tern::smtpc {

namespace {
constexpr size_t kMaxPolicy = 64 * 1024;  // RFC 8461 3.3
double now() { return static_cast<double>(sys::now_us()) / 1e6; }

std::optional<size_t> content_length(std::string_view head) {
    std::string lower(head);
    for (char& c : lower)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    size_t at = lower.find("\ncontent-length:");
    if (at == std::string::npos) return std::nullopt;
    size_t n = 0;
    bool digits = false;
    for (size_t i = at + 16; i < lower.size() && lower[i] != '\r' && lower[i] != '\n'; ++i) {
        if (lower[i] == ' ' || lower[i] == '\t') continue;
        if (lower[i] < '0' || lower[i] > '9' || n > kMaxPolicy * 10) return size_t(-1);
        n = n * 10 + static_cast<size_t>(lower[i] - '0');
        digits = true;
    }
    return digits ? n : size_t(-1);
}

// A domain usable as a file name: letters, digits, '-' and inner dots.
bool safe_name(std::string_view d) {
    if (d.empty() || d.size() > 253 || d.front() == '.' || d.find("..") != std::string_view::npos) return false;
    for (char c : d)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
    return true;
}
}  // namespace

struct StsCache::Fetch {
    StsCache* self = nullptr;
    uint64_t id = 0;
    std::string domain, txt_id;
    Done done;
    event::BufferEvent bev;
    event::Watch timer;
    std::string response;
};

StsCache::StsCache(event_base* base, const Settings& settings, dns::Resolver& resolver)
    : base_(base), settings_(settings), resolver_(resolver) {
    reaper_ = event::timer(base_, [this](short) { done_.clear(); });
    if (auto st = sys::mkdir_p(settings_.sts_cache_dir, 0700); st)
        dir_ = settings_.sts_cache_dir;
    else
        log::warning("MTA-STS policies kept in memory only: %s", st.message().c_str());
}

void StsCache::load(const std::string& domain) {
    if (dir_.empty() || loaded_[domain] || cache_.count(domain) || !safe_name(domain)) return;
    loaded_[domain] = true;
    auto text = sys::read_file(dir_ + "/" + domain, kMaxPolicy + 256);
    if (!text) return;  // none kept
    std::string_view t = *text;
    size_t a = t.find('\n');
    size_t b = a == std::string_view::npos ? a : t.find('\n', a + 1);
    if (b == std::string_view::npos) return;
    Entry e;
    e.id = std::string(t.substr(0, a));
    std::string expires(t.substr(a + 1, b - a - 1));
    char* end = nullptr;
    e.expires = std::strtod(expires.c_str(), &end);
    auto policy = mtasts::parse(t.substr(b + 1));
    if (!end || *end != '\0' || expires.empty() || !policy || !mtasts::parse_txt("v=STSv1; id=" + e.id)) {
        log::warning("MTA-STS policy file %s/%s is damaged; ignored", dir_.c_str(), domain.c_str());
        return;
    }
    e.policy = *policy;
    if (e.expires > now()) cache_[domain] = std::move(e);
}

void StsCache::save(const std::string& domain, const Entry& entry, std::string_view text) {
    if (dir_.empty() || !safe_name(domain)) return;
    std::string data = entry.id + "\n" + std::to_string(static_cast<long long>(entry.expires)) + "\n";
    data.append(text);
    if (auto st = sys::write_file_atomic(dir_ + "/" + domain, data, 0600); !st)
        log::warning("MTA-STS policy for %s not kept on disk: %s", domain.c_str(), st.message().c_str());
}

StsCache::~StsCache() = default;

std::optional<mtasts::Policy> StsCache::cached(const std::string& domain) const {
    auto it = cache_.find(domain);
    if (it == cache_.end() || it->second.expires <= now()) return std::nullopt;
    return it->second.policy;
}

std::string StsCache::stamp(const std::string& domain) const {
    auto it = cache_.find(domain);
    if (it == cache_.end() || it->second.expires <= now()) return "";
    return it->second.id + "@" + std::to_string(it->second.expires);
}

void StsCache::policy_for(const std::string& domain, Done done) {
    resolver_.lookup("_mta-sts." + domain, dns::Type::TXT, [this, domain, done](dns::Answer a) {
        std::vector<std::string> ids;
        if (a.status == dns::AnswerStatus::Ok)
            for (const auto& r : a.records)
                if (r.text.rfind("v=STSv1", 0) == 0) {
                    if (auto id = mtasts::parse_txt(r.text)) ids.push_back(*id);
                    else ids.push_back("");  // invalid: counts against "exactly one"
                }
        load(domain);
        auto it = cache_.find(domain);
        bool fresh = it != cache_.end() && it->second.expires > now();
        if (ids.size() != 1 || ids[0].empty()) {
            done(cached(domain));  // no (usable) record: a valid cached policy still applies
            return;
        }
        if (fresh && it->second.id == ids[0]) {
            done(it->second.policy);
            return;
        }
        fetch(domain, ids[0], done);
    });
}

void StsCache::fetch(const std::string& domain, const std::string& id, Done done) {
    auto f = std::make_unique<Fetch>();
    f->self = this;
    f->id = next_id_++;
    f->domain = domain;
    f->txt_id = id;
    f->done = std::move(done);
    uint64_t fid = f->id;
    f->timer = event::timer(base_, [this, fid](short) { finish(fid, "timeout"); });
    f->timer.add(settings_.connect_timeout);
    fetches_.emplace(fid, std::move(f));
    resolver_.lookup("mta-sts." + domain, dns::Type::A, [this, fid](dns::Answer a) {
        if (!fetches_.count(fid)) return;
        if (a.status != dns::AnswerStatus::Ok) {
            finish(fid, "no address for the policy host");
            return;
        }
        connect(fid, a.records.front().text);
    });
}

void StsCache::connect(uint64_t fid, const std::string& ip) {
    Fetch& f = *fetches_.at(fid);
    std::string host = "mta-sts." + f.domain;
    auto addr = net::parse_ip(ip, settings_.mta_sts_port);
    SSL* ssl = SSL_new(settings_.tls.get());
    if (!addr || !ssl) {
        if (ssl) SSL_free(ssl);
        finish(fid, "cannot connect");
        return;
    }
    // RFC 8461 3.3: the policy host's certificate must verify for its name.
    SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_set1_host(ssl, host.c_str());
    SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
    // Web servers often close without close_notify; a truncated body is
    // caught by the Content-Length check instead.
    SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    f.bev.reset(bufferevent_openssl_socket_new(base_, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                               BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS));
    if (!f.bev) {
        SSL_free(ssl);
        finish(fid, "cannot start TLS");
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(f.bev.get(), 1);
    // The callbacks get the Fetch, which owns the bufferevent: they cannot
    // outlive it.  A finished fetch is no longer in fetches_.
    using Ctx = Fetch;
    Ctx* ctx = &f;
    bufferevent_setcb(
        f.bev.get(),
        [](bufferevent* bev, void* arg) {
            auto* c = static_cast<Ctx*>(arg);
            auto it = c->self->fetches_.find(c->id);
            if (it == c->self->fetches_.end()) return;
            evbuffer* in = bufferevent_get_input(bev);
            size_t n = evbuffer_get_length(in);
            std::string& r = it->second->response;
            size_t take = std::min(n, kMaxPolicy + 4096 - std::min(r.size(), kMaxPolicy + 4096));
            size_t old = r.size();
            r.resize(old + take);
            evbuffer_remove(in, r.data() + old, take);
            if (take < n) c->self->finish(c->id, "policy too large");
        },
        nullptr,
        [](bufferevent* bev, short what, void* arg) {
            auto* c = static_cast<Ctx*>(arg);
            if (!c->self->fetches_.count(c->id)) return;
            if (what & BEV_EVENT_CONNECTED) {
                Fetch& fe = *c->self->fetches_.at(c->id);
                std::string req = "GET /.well-known/mta-sts.txt HTTP/1.0\r\nHost: mta-sts." + fe.domain +
                                  "\r\nUser-Agent: tern\r\nConnection: close\r\n\r\n";
                bufferevent_write(bev, req.data(), req.size());
                return;
            }
            if (what & BEV_EVENT_EOF) {
                c->self->finish(c->id, "");
                return;
            }
            std::string why = tls::bufferevent_errors(bev);
            c->self->finish(c->id, why.empty() ? "connection failed" : why);
        },
        ctx);
    bufferevent_enable(f.bev.get(), EV_READ | EV_WRITE);
    socklen_t len = addr->ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (bufferevent_socket_connect(f.bev.get(), reinterpret_cast<sockaddr*>(&*addr), static_cast<int>(len)) != 0)
        finish(fid, "cannot connect");
}

void StsCache::finish(uint64_t fid, const std::string& error) {
    auto it = fetches_.find(fid);
    if (it == fetches_.end()) return;
    std::unique_ptr<Fetch> f = std::move(it->second);
    fetches_.erase(it);
    if (f->bev) bufferevent_disable(f->bev.get(), EV_READ | EV_WRITE);
    f->timer.del();
    std::string why = error;
    std::optional<mtasts::Policy> policy;
    std::string text;  // the policy as served, for the file copy
    if (why.empty()) {
        // HTTP/1.x 200, then the body after the blank line (RFC 8461 3.3).
        const std::string& r = f->response;
        size_t end = r.find("\r\n\r\n");
        size_t body = end == std::string::npos ? std::string::npos : end + 4;
        if (body == std::string::npos) {
            end = r.find("\n\n");
            body = end == std::string::npos ? std::string::npos : end + 2;
        }
        if (r.rfind("HTTP/1.", 0) != 0 || r.size() < 12 || r.compare(9, 3, "200") != 0 || body == std::string::npos) {
            why = r.size() >= 12 ? "HTTP status " + r.substr(9, 3) : "no HTTP response";
        } else if (r.size() - body > kMaxPolicy) {
            why = "policy too large";
        } else if (auto cl = content_length(std::string_view(r).substr(0, body)); cl && *cl != r.size() - body) {
            why = "truncated policy";
        } else {
            text = r.substr(body);
            auto p = mtasts::parse(text);
            if (!p) why = p.message();
            else policy = *p;
        }
    }
    if (policy) {
        Entry& e = cache_[f->domain] = Entry{f->txt_id, *policy, now() + static_cast<double>(policy->max_age)};
        save(f->domain, e, text);
        log::info("MTA-STS policy for %s: mode=%s, max_age=%lld", f->domain.c_str(),
                  std::string(mtasts::mode_name(policy->mode)).c_str(), static_cast<long long>(policy->max_age));
    } else {
        log::warning("MTA-STS policy fetch for %s failed: %s", f->domain.c_str(), why.c_str());
        policy = cached(f->domain);
    }
    Done done = std::move(f->done);
    done_.push_back(std::move(f));
    reaper_.activate();
    done(policy);
}

}  // namespace tern::smtpc
