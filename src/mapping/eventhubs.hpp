// The Azure Event Hubs dialect for direct Kafka topic access: hubs, partitions, consumer
// groups, batches and the $cbs / $management nodes. Pure functions: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/direct_record.hpp"
#include "mapping/kafka.hpp"
#include "trestle/core/message.hpp"
#include "trestle/core/types.hpp"

namespace trestle::mapping {

// clang-format off
// Azure Event Hubs (docs/kafka.md, "Direct topic access, Azure Event Hubs dialect"), the hub
// being the Kafka topic:
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
// clang-format on
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
