// Direct Kafka topic access for AMQP clients, in the dialects they already have code for:
// what a sender's messages say about their record, the record as a receiver gets it, and what
// a receiver's address and filters ask for. Pure functions: no I/O.
//
// The Strimzi AMQP bridge (research/anchors.md b3):
//
//   AMQP                                         Kafka
//   link target, or message `to` (wins)         topic ('/' becomes '.')
//   message-annotation x-opt-bridge.partition    partition (int; absent: by key / any)
//   message-annotation x-opt-bridge.key          key (string)
//   body (data, or amqp-value binary/string)     value
//   receiver source <topic>/group.id/<group>     consumer group <group> on <topic>
//   source filter io.strimzi:partition-filter:int / io.strimzi:offset-filter:long
//                                                 one partition, from an offset
//   x-opt-bridge.topic/partition/offset/key      annotations on every received message
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/kafka.hpp"
#include "trestle/core/message.hpp"
#include "trestle/core/types.hpp"

namespace trestle::mapping {

// Where a sender's message goes, besides its record.
struct Produce {
    std::string topic;  // from `to` (Strimzi); empty: the link's
    std::optional<int32_t> partition;
};

// The record of a sender's message, written into `record` (reused by the caller: no
// allocation per message once warm): value = the body (data sections, or an amqp-value
// binary/string), key and partition from the named message annotations (empty name: none),
// no headers. False (with `error` set) when the message cannot be read.
// With `properties_as_headers`, application properties become headers (values as text).
bool read_direct_produce(const core::Message& m, std::string_view partition_annotation,
                         std::string_view key_annotation, Produce& out, KafkaRecord& record,
                         std::string& error, bool properties_as_headers = false);
// The same for an encoded message (an event inside an Event Hubs batch).
bool read_direct_produce(std::string_view message, std::string_view partition_annotation,
                         std::string_view key_annotation, Produce& out, KafkaRecord& record,
                         std::string& error, bool properties_as_headers = false);

namespace strimzi {

inline constexpr std::string_view partition_filter = "io.strimzi:partition-filter:int";
inline constexpr std::string_view offset_filter = "io.strimzi:offset-filter:long";

// Strimzi's error conditions.
namespace condition {
inline constexpr std::string_view no_group_id = "io.strimzi:no-group-id";
inline constexpr std::string_view partition_not_exists = "io.strimzi:partition-not-exists";
inline constexpr std::string_view error_to_kafka = "io.strimzi:error-to-kafka";
inline constexpr std::string_view wrong_partition_filter = "io.strimzi:wrong-partition-filter";
inline constexpr std::string_view wrong_offset_filter = "io.strimzi:wrong-offset-filter";
inline constexpr std::string_view no_partition_filter = "io.strimzi:no-partition-filter";
inline constexpr std::string_view wrong_filter = "io.strimzi:wrong-filter";
inline constexpr std::string_view kafka_subscribe = "io.strimzi:kafka-subscribe";
}  // namespace condition

// Kafka's topic name for an AMQP address.
std::string topic_name(std::string_view address);

// A sender's message as a record (topic from `to`, x-opt-bridge.partition / key).
bool read_produce(const core::Message& m, Produce& out, KafkaRecord& record, std::string& error);

// A receiver's request: source address and its encoded filter-set (may be empty).
struct Consume {
    std::string topic;
    std::string group;
    std::optional<int32_t> partition;
    std::optional<int64_t> offset;
};
// False with the Strimzi condition when the request is not valid.
bool read_consume(std::string_view address, std::string_view filter, Consume& out,
                  core::ErrorCondition& error);

// A record as a receiver gets it.
core::MessageRef message(std::string_view topic, int32_t partition, int64_t offset,
                         std::optional<std::string_view> key, std::string_view value);

}  // namespace strimzi

// Azure Event Hubs (research/anchors.md b5), the hub being the Kafka topic:
//
//   AMQP                                             Kafka
//   sender target <hub> or <hub>/Partitions/<n>      topic, partition
//   message-annotation x-opt-partition-key           key
//   body                                             value
//   receiver source <hub>/ConsumerGroups/<cg>/Partitions/<n>
//                                                     partition n (the client keeps its own
//                                                     checkpoints: nothing is committed)
//   filter apache.org:selector-filter:string          start: amqp.annotation.x-opt-offset or
//     amqp.annotation.x-opt-sequence-number > / >= '<n>' ('-1' = start, '@latest' = end), or
//     amqp.annotation.x-opt-enqueued-time > / >= '<epoch ms>'
//   application properties                           headers (values as text; received
//                                                     as string properties)
//   x-opt-offset (string), x-opt-sequence-number (long), x-opt-enqueued-time (timestamp),
//   x-opt-partition-key                               on every received message
namespace eventhubs {

inline constexpr std::string_view selector_filter = "apache.org:selector-filter:string";
inline constexpr uint64_t selector_descriptor = 0x0000468C00000004;

struct Target {
    std::string hub;
    std::optional<int32_t> partition;
};
bool read_target(std::string_view address, Target& out, core::ErrorCondition& error);

// Where a receiver starts.
struct Start {
    enum class Kind : uint8_t { earliest, latest, offset, time } kind = Kind::earliest;
    int64_t value = 0;  // offset: the first offset to read; time: the first epoch ms
};
struct Consume {
    std::string hub;
    std::string group;
    int32_t partition = 0;
    Start start;
};
bool read_consume(std::string_view address, std::string_view filter, Consume& out,
                  core::ErrorCondition& error);

// A record as a receiver gets it; its headers become application properties (strings).
core::MessageRef message(int64_t offset, int64_t timestamp_ms, std::optional<std::string_view> key,
                         std::string_view value, const std::vector<HeaderView>& headers = {});

// Azure SDKs send events in batches: one transfer of message-format 0x80013700 whose data
// sections each hold an encoded message (an event: one record). Proton 0.37 (Debian 12) does
// not expose a transfer's message-format, so a batch is recognised by its shape: every body
// section a data section holding a complete AMQP message with a body (the envelope's other
// sections are the SDK's and ignored). True with the events' encodings (views into `m`).
bool read_batch(const core::Message& m, std::vector<std::string_view>& events);

// The request-response nodes every Azure SDK talks to before it attaches to a hub:
//   $cbs         put-token (claims-based security): answered 202
//   $management  READ com.microsoft:eventhub (name, created_at, partition_count,
//                partition_ids) and READ com.microsoft:partition (begin/last sequence number,
//                last offset and enqueued time, is_partition_empty)
// Requests carry application properties operation/type/name(/partition) and a reply-to; a
// response's correlation-id is the request's message-id, its status in application properties
// status-code / status-description (/ error-condition), its answer an amqp-value map.
inline constexpr std::string_view cbs_node = "$cbs";
inline constexpr std::string_view management_node = "$management";

struct NodeRequest {
    std::string operation, type, name, partition;
    std::string reply_to;
    std::string message_id;  // as encoded: the response's correlation-id, type and all
};
// False (with `error` set) when the message is not a readable request.
bool read_node_request(const core::Message& m, NodeRequest& out, std::string& error);

struct HubProperties {
    std::string name;
    std::vector<int32_t> partitions;
};
struct PartitionProperties {
    std::string hub;
    int32_t partition = 0;
    int64_t begin = 0;         // first offset kept
    int64_t end = 0;           // the next offset to be written (high watermark)
    int64_t last_time_ms = 0;  // of the last record
};
// The encoded amqp-value maps of the two READ answers.
std::string encode(const HubProperties& p);
std::string encode(const PartitionProperties& p);

// A response: `body` an encoded AMQP value (empty: none), `condition` empty unless it failed.
core::MessageRef node_response(std::string_view reply_to, std::string_view correlation_id,
                               int32_t status, std::string_view description,
                               std::string_view condition = {}, std::string_view body = {});

}  // namespace eventhubs
}  // namespace trestle::mapping
