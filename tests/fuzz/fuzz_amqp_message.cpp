// Fuzzes the AMQP message scanner used on the forwarding path (spans must stay in bounds) and
// the MQTT <-> AMQP mapping that reads whatever an AMQP client sent: conversion to MQTT must
// either refuse or produce a well-formed MQTT-format message, which converts back to AMQP that
// the scanner accepts.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "amqp/codec.hpp"
#include "mapping/mqtt_amqp.hpp"
#include "mqtt/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace trestle;
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    amqp::MessageLayout l;
    if (!amqp::scan_message(bytes, l).empty()) return 0;
    for (const auto* s : {&l.header, &l.delivery_annotations, &l.message_annotations, &l.properties,
                          &l.application_properties, &l.body, &l.footer})
        if (s->present() && s->offset + s->size > size) __builtin_trap();
    for (auto v : {l.to, l.reply_to, l.subject})
        if (!v.empty() && (v.data() < bytes.data() || v.data() + v.size() > bytes.data() + size))
            __builtin_trap();

    core::MessageRef m = core::MessageRef::adopt(core::Message::copy_of(bytes));
    // Offsets in `l` are relative to the message start, so they hold for the copy too.
    amqp::MessageLayout ml;
    if (!amqp::scan_message(m->bytes(), ml).empty()) __builtin_trap();
    mapping::inspect_amqp(*m, ml, 1000);
    for (std::string_view topic : {std::string_view(), std::string_view("fuzz/topic")}) {
        core::MessageRef mq = mapping::mqtt_from_amqp(*m, topic, 1000);
        if (!mq) continue;
        mqtt::MessageView v;
        if (!mqtt::view_message(*mq, v)) __builtin_trap();
        core::MessageRef back = mapping::amqp_from_mqtt(*mq, 1000, true);
        if (!back) __builtin_trap();
        amqp::MessageLayout bl;
        if (!amqp::scan_message(back->bytes(), bl).empty()) __builtin_trap();
    }
    return 0;
}
