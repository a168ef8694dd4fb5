// Fuzzes the Kafka record -> message mapping, which reads whatever any Kafka producer wrote
// (key, value, headers): a record either maps to nothing (expired) or to a well-formed message
// of the routed protocol forms, which maps back to a record and survives conversion to AMQP.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "amqp/codec.hpp"
#include "mapping/kafka.hpp"
#include "mapping/mqtt_amqp.hpp"
#include "mqtt/message.hpp"

// Input layout: fields separated by 0xFF bytes — key, value, then header name/value pairs.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace trestle;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> f;
    size_t pos = 0;
    while (f.size() < 32) {
        size_t e = in.find('\xff', pos);
        f.push_back(in.substr(pos, e == std::string_view::npos ? std::string_view::npos : e - pos));
        if (e == std::string_view::npos) break;
        pos = e + 1;
    }
    std::string_view key = f[0];
    std::string_view value = f.size() > 1 ? f[1] : std::string_view();
    std::vector<mapping::HeaderView> headers;
    for (size_t i = 2; i + 1 < f.size(); i += 2) headers.emplace_back(f[i], f[i + 1]);

    std::string_view address = mapping::record_address(key, headers);
    if (address.empty()) address = "fuzz/default";
    bool expired = false;
    core::MessageRef m = mapping::message_from_record(address, value, headers, 1700000000000, 5000,
                                                      1700000000000, expired);
    if (!m) return 0;  // expired, or headers that cannot form a message: refused, not a crash
    if (m->format() == core::MessageFormat::mqtt) {
        mqtt::MessageView v;
        if (!mqtt::view_message(*m, v)) __builtin_trap();
        core::MessageRef a = mapping::amqp_from_mqtt(*m, 5000);
        if (!a) __builtin_trap();
        amqp::MessageLayout l;
        if (!amqp::scan_message(a->bytes(), l).empty()) __builtin_trap();
    } else {
        amqp::MessageLayout l;
        if (!amqp::scan_message(m->bytes(), l).empty()) __builtin_trap();
    }
    mapping::KafkaRecord r;
    if (!mapping::record_from_message(*m, address, {}, 5000, 1700000000000, r)) __builtin_trap();
    if (r.key != address) __builtin_trap();
    return 0;
}
