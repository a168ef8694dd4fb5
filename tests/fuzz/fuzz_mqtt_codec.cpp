// Fuzzes the MQTT codec: any bytes decode or fail with a reason code, never crash; whatever
// decodes survives encode -> decode unchanged; PUBLISH decoded into a reused scratch is the same.
// The first byte picks the protocol level.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mqtt/codec.hpp"

using namespace trestle::mqtt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    uint8_t level = (data[0] & 1) ? v5 : v311;
    std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    FrameInfo f = frame(bytes, 1 << 20);
    if (f.status != FrameInfo::Status::complete) return 0;
    DecodeError err;
    auto p = decode(bytes.substr(0, f.total_size), level, err);
    if ((static_cast<uint8_t>(bytes[0]) >> 4) == 3) {
        // The per-message path (one scratch reused across inputs) agrees with decode().
        static PublishScratch scratch;
        DecodeError serr;
        bool ok = decode_publish(bytes.substr(0, f.total_size), level, scratch, serr);
        if (ok != p.has_value()) __builtin_trap();
        if (ok && !(scratch.publish == p->publish)) __builtin_trap();
        if (!ok && serr.reason != err.reason) __builtin_trap();
    }
    if (!p) {
        if (err.reason < 0x80) __builtin_trap();  // failures always carry an error reason code
        return 0;
    }
    uint8_t enc_level = p->type == PacketType::connect ? p->connect.level : level;
    std::string again;
    encode(*p, enc_level, again);
    DecodeError err2;
    auto q = decode(again, enc_level, err2);
    if (!q || !same(*p, *q)) __builtin_trap();
    return 0;
}
