// The one mapping between routed messages (AMQP or MQTT form) and Kafka records, documented as
// a table in README.md. The record key is the address (the MQTT topic), as Zilla does; the value
// is the payload as it is; everything else travels in headers:
//
//   MQTT 5                     AMQP 1.0                          Kafka
//   topic                      address / properties.to           key (or header trestle.address)
//   payload                    data sections / amqp-value string  value
//   QoS                        x-opt-mqtt-qos, durable           header trestle.qos ("0", "2";
//   absent = 1) retain                     x-opt-retain-message              header trestle.retain
//   ("true") payload format 1 (UTF-8)   amqp-value string body            header trestle.format
//   ("utf-8") content type               properties.content-type           header content-type
//   response topic             properties.reply-to               header reply-to
//   correlation data           properties.correlation-id         header correlation-id
//   message expiry             header.ttl                        header trestle.expires-at
//                                                                 (epoch ms)
//   -                          properties.message-id (as text)   header message-id
//   -                          properties.subject                header subject
//   -                          properties.creation-time          record timestamp
//   user properties            application-properties            one header each, same name
//
// A record without trestle.qos is QoS 1 (Kafka is durable); one without headers at all is a
// plain payload for its key's address.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trestle/core/message.hpp"

namespace trestle::mapping {

namespace kafka_header {
inline constexpr std::string_view address = "trestle.address";
inline constexpr std::string_view qos = "trestle.qos";
inline constexpr std::string_view retain = "trestle.retain";
inline constexpr std::string_view format = "trestle.format";
inline constexpr std::string_view expires_at = "trestle.expires-at";
inline constexpr std::string_view content_type = "content-type";
inline constexpr std::string_view reply_to = "reply-to";
inline constexpr std::string_view correlation_id = "correlation-id";
inline constexpr std::string_view message_id = "message-id";
inline constexpr std::string_view subject = "subject";
// Set on dead-lettered records.
inline constexpr std::string_view dead_letter_reason = "trestle.dead-letter-reason";
}  // namespace kafka_header

struct KafkaRecord {
    std::string key;
    bool has_key = false;
    std::string value;
    std::vector<std::pair<std::string, std::string>> headers;
    int64_t timestamp_ms = 0;  // 0: the producer's clock
};

struct KafkaRecordOptions {
    bool key_is_address = true;  // else no key, and the address goes in trestle.address
    bool headers = true;         // else the value alone (plus trestle.address when needed)
};

// The record for a message routed to `address`. `now_ms` is the core's clock (message expiry),
// `epoch_ms` the wall clock. False when the message cannot be read.
bool record_from_message(const core::Message& m, std::string_view address,
                         const KafkaRecordOptions& options, uint64_t now_ms, int64_t epoch_ms,
                         KafkaRecord& out);

using HeaderView = std::pair<std::string_view, std::string_view>;

// The address a record belongs to: trestle.address, else its key (empty: none).
std::string_view record_address(std::string_view key, const std::vector<HeaderView>& headers);

// A routable message from a record for `address`: MQTT form, or AMQP form when the record
// carries AMQP-only properties (message-id, subject, a non-data AMQP body). An expired record
// gives an empty ref and sets `expired`; a record whose content-type is application/x-amqp-body
// but whose value is not AMQP body sections gives an empty ref (dead-lettered by the caller).
core::MessageRef message_from_record(std::string_view address, std::string_view value,
                                     const std::vector<HeaderView>& headers, int64_t timestamp_ms,
                                     uint64_t now_ms, int64_t epoch_ms, bool& expired);

}  // namespace trestle::mapping
