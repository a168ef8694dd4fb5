// Fuzzes the Strimzi dialect's readers: a receiver's source address and filter-set, and a
// sender's message (annotations, body). Each must refuse with a condition or give sane values;
// a record in the dialect's form must read back as itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mapping/strimzi.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace trestle;
    namespace s = mapping::strimzi;
    if (size == 0) return 0;
    std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 3) {
        case 0: {  // filter-set
            s::Consume c;
            core::ErrorCondition e;
            if (s::read_consume("topic/group.id/g", bytes, c, e)) {
                if (c.topic != "topic" || c.group != "g") __builtin_trap();
                if (c.partition && *c.partition < 0) __builtin_trap();
                if (c.offset && (*c.offset < 0 || !c.partition)) __builtin_trap();
            } else if (!e.name.starts_with("io.strimzi:")) {
                __builtin_trap();
            }
            break;
        }
        case 1: {  // source address
            s::Consume c;
            core::ErrorCondition e;
            if (s::read_consume(bytes, {}, c, e) && (c.group.empty() || c.topic.empty())) __builtin_trap();
            break;
        }
        default: {  // a sender's message
            core::MessageRef m = core::MessageRef::adopt(core::Message::copy_of(bytes));
            s::Produce p;
            std::string err;
            if (!s::read_produce(*m, p, err) && err.empty()) __builtin_trap();
            if (p.partition && *p.partition < 0) __builtin_trap();
            // The dialect's own form reads back.
            std::string key(bytes.substr(0, bytes.size() / 2));
            core::MessageRef r = s::message("t", 3, 42, &key, bytes);
            s::Produce back;
            if (!s::read_produce(*r, back, err) || back.value != bytes || back.key != key ||
                back.partition != 3)
                __builtin_trap();
        }
    }
    return 0;
}
