// Fuzz target: DNS replies as lib/dns parses them (every record type it knows).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/dns/message.hpp"

using namespace tern::dns;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view wire(reinterpret_cast<const char*>(data), size);
    uint16_t id = size >= 2 ? static_cast<uint16_t>((data[0] << 8) | data[1]) : 0;
    for (Type type : {Type::A, Type::AAAA, Type::MX, Type::CNAME, Type::TXT, Type::TLSA}) {
        for (const char* name : {"example.org", "a.example"}) {
            auto a = parse_answer(wire, id, name, type);
            if (!a) continue;
            for (const auto& r : a->records)
                if (r.type != type) std::abort();
            if (a->status == AnswerStatus::Ok && a->records.empty()) std::abort();
        }
    }
    return 0;
}
