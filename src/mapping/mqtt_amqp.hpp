// The one mapping between MQTT 5 and AMQP 1.0 messages (documented as a table in README.md):
//
//   MQTT                         AMQP
//   topic                        properties.to (and the routed address)
//   QoS 0 / 1 / 2                presettled / unsettled; message-annotations x-opt-mqtt-qos,
//                                header.durable = QoS > 0 (without the annotation: durable -> 1)
//   retain                       message-annotations x-opt-retain-message
//   DUP                          header.delivery-count > 0
//   payload, format 0            body: data section(s)
//   payload, format 1 (UTF-8)    body: amqp-value string
//   content type                 properties.content-type
//   response topic               properties.reply-to
//   correlation data             properties.correlation-id (binary)
//   message expiry interval (s)  header.ttl (ms); absolute-expiry-time also honoured
//   user properties              application-properties (string values; first of a repeated key)
//
// Called only when a message crosses protocols; results are cached on the message.
#pragma once

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "amqp/codec.hpp"
#include "mqtt/codec.hpp"
#include "trestle/core/message.hpp"

namespace trestle::mapping {

// The parts an AMQP message is built from when it did not arrive as AMQP (from MQTT, from a
// Kafka record): the MQTT 5 properties carry content type, response topic (reply-to),
// correlation data, payload format and user properties (application-properties).
struct AmqpFields {
    std::string_view topic;    // properties.to
    std::string_view payload;  // body: data, or an amqp-value string when format is UTF-8
    bool raw_body = false;     // payload is already encoded AMQP body sections
    mqtt::Properties properties;
    uint8_t qos = 0;
    bool retain = false;
    bool dup = false;
    uint64_t ttl_ms = 0;
    std::optional<std::string> message_id;  // string message-id
    std::optional<std::string> subject;
    int64_t creation_time_ms = 0;                                  // 0 = none
    std::vector<std::pair<std::string, std::string>> annotations;  // extra string annotations
};
core::MessageRef amqp_from_fields(const AmqpFields& f);

// An MQTT-format message in AMQP form. `dup` sets delivery-count 1.
core::MessageRef amqp_from_mqtt(const core::Message& m, uint64_t now_ms, bool dup = false);

// An AMQP message in MQTT form, for `topic` (the address it was routed to; empty: its `to`).
// Returns an empty ref when there is no usable topic or the message cannot be read.
core::MessageRef mqtt_from_amqp(const core::Message& m, std::string_view topic, uint64_t now_ms);

// What mqtt_from_amqp puts in the MQTT message, before it is encoded, plus what MQTT has no
// place for; read once (the Kafka mapping writes it as headers without an MQTT message in
// between). `topic` as for mqtt_from_amqp; false when there is none or the message cannot be
// read.
struct AmqpAsMqtt {
    amqp::MessageLayout layout;
    std::string_view topic;
    mqtt::Properties properties;
    std::string payload;
    std::string message_id, subject;  // empty: none
    int64_t creation_time_ms = 0;     // 0: none
};
bool read_amqp_as_mqtt(const core::Message& m, std::string_view topic, AmqpAsMqtt& out);

// The payload of an AMQP message's body, into `payload`: data sections concatenated, or an
// amqp-value string's or binary's content (`text` for a string); any other body section as
// its AMQP encoding (`encoded`).
enum class BodyKind : uint8_t { bytes, text, encoded, unreadable };
BodyKind body_payload(std::string_view message, const amqp::MessageLayout& layout,
                      std::string& payload);

// Sets the core's fields (retain, empty payload, QoS, expiry) of an AMQP message entering the
// router, from its annotations, header and body.
void inspect_amqp(core::Message& m, const amqp::MessageLayout& layout, uint64_t now_ms);

// AMQP form for a destination: the message itself, or its cached conversion.
const core::Message* as_amqp(const core::Message& m, uint64_t now_ms);

}  // namespace trestle::mapping
