// Fuzz target: the queue's record decoder must reject any corrupt bytes
// without crashing, and re-encoding a decoded record must decode the same.
#include <cstdint>
#include <string_view>

#include "lib/queue/records.hpp"

using namespace tern::queue;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    if (auto env = records::decode_envelope("0123456789ABCD", bytes)) {
        auto again = records::decode_envelope("0123456789ABCD", records::encode_envelope(*env));
        if (!again || again->sender != env->sender || again->size != env->size) __builtin_trap();
    }
    if (auto rcpt = records::decode_recipient(7, bytes)) {
        auto again = records::decode_recipient(7, records::encode_recipient(*rcpt));
        if (!again || again->address != rcpt->address || again->attempts != rcpt->attempts) __builtin_trap();
    }
    if (auto m = records::decode_message(bytes)) {
        auto again = records::decode_message(records::encode_message(*m));
        if (!again || again->envelope.id != m->envelope.id || again->recipients.size() != m->recipients.size() ||
            again->small_body != m->small_body || again->held != m->held)
            __builtin_trap();
    }
    return 0;
}
