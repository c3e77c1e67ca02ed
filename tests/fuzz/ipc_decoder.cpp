// Fuzz target for lib/ipc's frame Decoder (and the delivery protocol
// decoders behind it): arbitrary bytes, fed in chunks whose size comes
// from the first input byte, must yield messages or a clean Error.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "lib/delivery/request.hpp"
#include "lib/ipc/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    size_t chunk = 1 + data[0] % 64;
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    // A small frame limit so the size check is reachable.
    tern::ipc::Decoder decoder(data[0] & 0x80 ? 256 : tern::ipc::kDefaultMaxFrame);
    // Odd inputs come with one fd beside the bytes, as a peer could send.
    if (data[0] & 1) decoder.feed_fd(tern::Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
    for (size_t pos = 0; pos < input.size(); pos += chunk) {
        decoder.feed(input.substr(pos, chunk));
        for (int guard = 0; guard < 10000; ++guard) {
            auto next = decoder.next();
            if (!next) return 0;  // protocol error: the connection would close
            if (!next->has_value()) break;
            tern::ipc::Message& m = **next;
            (void)m.get_int("size");
            (void)m.get_all("rcpt");
            (void)tern::ipc::encode(m);
            if (m.type() == "deliver") (void)tern::delivery::decode_request(m);
            if (m.type() == "result") (void)tern::delivery::decode_response(m);
        }
    }
    return 0;
}
