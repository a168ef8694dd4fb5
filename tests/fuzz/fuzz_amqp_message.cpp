// Fuzzes the AMQP message scanner used on the forwarding path: spans must stay in bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "amqp/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    trestle::amqp::MessageLayout l;
    if (trestle::amqp::scan_message(bytes, l).empty()) {
        for (const auto* s : {&l.header, &l.delivery_annotations, &l.message_annotations,
                              &l.properties, &l.application_properties, &l.body, &l.footer})
            if (s->present() && s->offset + s->size > size) __builtin_trap();
        for (auto v : {l.to, l.reply_to, l.subject})
            if (!v.empty() && (v.data() < bytes.data() || v.data() + v.size() > bytes.data() + size))
                __builtin_trap();
    }
    return 0;
}
