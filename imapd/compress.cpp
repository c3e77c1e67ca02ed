// COMPRESS=DEFLATE filter: see compress.hpp.
#include "imapd/compress.hpp"

#include <event2/buffer.h>

#include <memory>
#include <optional>

#include "imapd/server.hpp"
#include "imapd/session.hpp"
#include "lib/compress/deflate.hpp"
#include "lib/event/loop.hpp"
#include "lib/imap/response.hpp"
#include "lib/log/log.hpp"

namespace tern::imapd {

struct Compression {
    Compression(compress::Deflater d, compress::Inflater i, std::function<void(std::string)> cb)
        : deflater(std::move(d)), inflater(std::move(i)), on_corrupt(std::move(cb)) {}
    compress::Deflater deflater;
    compress::Inflater inflater;
    std::function<void(std::string)> on_corrupt;
    bufferevent* bev = nullptr;  // the filter
    event::Watch flusher;        // deferred sync flush (and corruption report)
    bool flush_scheduled = false;
    std::string scratch;
    std::string corrupt;  // the inflate error, once
    bool reported = false;
    bool detached = false;  // the session is gone
};

namespace {

void schedule(Compression& c) {
    if (c.flush_scheduled) return;
    c.flush_scheduled = true;
    c.flusher.activate();
}

bufferevent_filter_result input_filter(evbuffer* src, evbuffer* dst, ev_ssize_t limit, bufferevent_flush_mode,
                                       void* arg) {
    auto& c = *static_cast<Compression*>(arg);
    if (!c.corrupt.empty()) {
        evbuffer_drain(src, evbuffer_get_length(src));
        return BEV_ERROR;
    }
    size_t room = limit >= 0 ? static_cast<size_t>(limit) : kInflatedMax;
    bool produced = false;
    while (evbuffer_get_length(src) > 0 && room > 0) {
        evbuffer_iovec v;
        if (evbuffer_peek(src, -1, nullptr, &v, 1) < 1) break;
        size_t used = 0;
        c.scratch.clear();
        Status s = c.inflater.inflate(std::string_view(static_cast<const char*>(v.iov_base), v.iov_len), used,
                                      c.scratch, room);
        if (!c.scratch.empty()) {
            evbuffer_add(dst, c.scratch.data(), c.scratch.size());
            room -= std::min(room, c.scratch.size());
            produced = true;
        }
        evbuffer_drain(src, used);
        if (!s) {
            c.corrupt = s.message();
            evbuffer_drain(src, evbuffer_get_length(src));
            schedule(c);
            return BEV_ERROR;
        }
        if (used == 0) break;  // output room exhausted or more input needed
    }
    c.scratch = std::string();
    return produced ? BEV_OK : BEV_NEED_MORE;
}

bufferevent_filter_result output_filter(evbuffer* src, evbuffer* dst, ev_ssize_t, bufferevent_flush_mode mode,
                                        void* arg) {
    auto& c = *static_cast<Compression*>(arg);
    bool flush = mode != BEV_NORMAL;
    c.scratch.clear();
    while (evbuffer_get_length(src) > 0) {
        evbuffer_iovec v;
        if (evbuffer_peek(src, -1, nullptr, &v, 1) < 1) break;
        if (!c.deflater.compress(std::string_view(static_cast<const char*>(v.iov_base), v.iov_len), c.scratch))
            return BEV_ERROR;
        evbuffer_drain(src, v.iov_len);
        if (c.scratch.size() >= 16 * 1024) {
            evbuffer_add(dst, c.scratch.data(), c.scratch.size());
            c.scratch.clear();
        }
    }
    if (flush && !c.deflater.compress({}, c.scratch, true)) return BEV_ERROR;
    if (!c.scratch.empty()) evbuffer_add(dst, c.scratch.data(), c.scratch.size());
    c.scratch = std::string();
    if (!flush) schedule(c);
    return BEV_OK;
}

void on_flush(Compression& c) {
    c.flush_scheduled = false;
    if (c.detached) return;
    bufferevent_flush(c.bev, EV_WRITE, BEV_FLUSH);
    if (!c.corrupt.empty() && !c.reported) {
        c.reported = true;
        if (c.on_corrupt) c.on_corrupt(c.corrupt);  // may start closing the session; not freeing it
    }
}

void free_codec(void* arg) { delete static_cast<Compression*>(arg); }

}  // namespace

void detach_compression(Compression* state) {
    if (!state) return;
    state->detached = true;
    state->on_corrupt = nullptr;
}

bufferevent* start_compression(event_base* base, bufferevent* under, std::function<void(std::string)> on_corrupt,
                               Compression*& state, std::string& error) {
    auto deflater = compress::Deflater::create(compress::kSmallWindow);
    if (!deflater) {
        error = deflater.message();
        return nullptr;
    }
    auto inflater = compress::Inflater::create();
    if (!inflater) {
        error = inflater.message();
        return nullptr;
    }
    auto codec = std::make_unique<Compression>(std::move(*deflater), std::move(*inflater), std::move(on_corrupt));
    Compression* raw = codec.get();
    codec->flusher = event::timer(base, [raw](short) { on_flush(*raw); });
    bufferevent* top = bufferevent_filter_new(under, &input_filter, &output_filter,
                                              BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, &free_codec, raw);
    if (!top) {
        error = "bufferevent_filter_new failed";
        return nullptr;
    }
    codec.release();  // owned by the filter now (free_codec)
    raw->bev = top;
    state = raw;
    bufferevent_setwatermark(top, EV_READ, 0, kInflatedMax);
    // Compressed bytes that arrived with the COMPRESS command line.
    if (evbuffer_get_length(bufferevent_get_input(under)) > 0) bufferevent_trigger(under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS);
    return top;
}

void Session::cmd_compress(imap::Parser& p) {
    // RFC 4978: COMPRESS DEFLATE; the OK goes out uncompressed, everything
    // after it (both ways) is compressed.
    if (!p.sp()) return bad_syntax(p);
    auto mechanism = p.atom();
    if (!mechanism || !p.end()) return bad_syntax(p);
    if (imap::upper(*mechanism) != "DEFLATE")
        return (void)tagged("BAD", "", "unknown compression mechanism (DEFLATE is supported)");
    if (compression_) return (void)tagged("NO", "COMPRESSIONACTIVE", "DEFLATE is already active");
    tagged("OK", "", "DEFLATE active");
    std::string error;
    Compression* state = nullptr;
    bufferevent* top = start_compression(
        server_.base(), bev_,
        [this](const std::string& why) {
            log::warning("corrupt compressed data from %s user=%s: %s", peer_.c_str(), user_.c_str(), why.c_str());
            bye_and_close("corrupt compressed data");
        },
        state, error);
    if (!top) {
        log::warning("cannot start compression with %s: %s", peer_.c_str(), error.c_str());
        close_now(nullptr);
        return;
    }
    bev_ = top;
    compression_ = state;
    install_callbacks();
}

}  // namespace tern::imapd
