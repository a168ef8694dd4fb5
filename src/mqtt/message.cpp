#include "mqtt/message.hpp"

#include <cstring>

#include "mqtt/codec.hpp"

namespace trestle::mqtt {

core::MessageRef make_message(std::string_view topic, std::string_view properties,
                              std::string_view payload) {
    size_t vlen = varint_size(static_cast<uint32_t>(properties.size()));
    size_t size = 2 + topic.size() + vlen + properties.size() + payload.size();
    core::Message* m = core::Message::create(size, core::MessageFormat::mqtt);
    char* p = m->data();
    *p++ = static_cast<char>(topic.size() >> 8);
    *p++ = static_cast<char>(topic.size() & 0xff);
    std::memcpy(p, topic.data(), topic.size());
    p += topic.size();
    uint32_t n = static_cast<uint32_t>(properties.size());
    do {
        uint8_t b = n & 0x7f;
        n >>= 7;
        if (n) b |= 0x80;
        *p++ = static_cast<char>(b);
    } while (n);
    if (!properties.empty()) std::memcpy(p, properties.data(), properties.size());
    p += properties.size();
    if (!payload.empty()) std::memcpy(p, payload.data(), payload.size());
    m->empty_payload = payload.empty();
    return core::MessageRef::adopt(m);
}

bool view_message(const core::Message& m, MessageView& out) {
    if (m.format() != core::MessageFormat::mqtt) return false;
    std::string_view b = m.bytes();
    if (b.size() < 3) return false;
    size_t tlen = (uint8_t(b[0]) << 8) | uint8_t(b[1]);
    if (b.size() < 2 + tlen + 1) return false;
    out.topic = b.substr(2, tlen);
    size_t i = 2 + tlen;
    uint32_t plen = 0;
    for (int shift = 0;; shift += 7) {
        if (i >= b.size() || shift > 21) return false;
        uint8_t c = static_cast<uint8_t>(b[i++]);
        plen |= uint32_t(c & 0x7f) << shift;
        if (!(c & 0x80)) break;
    }
    if (b.size() - i < plen) return false;
    out.properties = b.substr(i, plen);
    out.payload = b.substr(i + plen);
    return true;
}

}  // namespace trestle::mqtt
