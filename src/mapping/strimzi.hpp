// The Strimzi AMQP bridge's dialect for direct Kafka topic access (docs/kafka.md, "Direct topic
// access, Strimzi AMQP bridge dialect"):
// what a sender's messages say about their record, the record as a receiver gets it, and what
// a receiver's address and filters ask for. Pure functions: no I/O.
//
// clang-format off
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
// clang-format on
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
}  // namespace trestle::mapping
