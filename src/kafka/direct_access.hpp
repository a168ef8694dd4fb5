// Direct topic access for AMQP clients (listener `kafkaDialect`): a client's link to
// `$strimzi/<topic>` or `$eventhubs/<hub>` is link routed to the Kafka adapter, which produces
// its messages to the topic or consumes the topic for it, in the form that client's SDK
// expects. One implementation per dialect: strimzi_access.cpp (the Strimzi AMQP bridge),
// eventhubs_access.cpp (Azure Event Hubs). The adapter's produce and consume paths
// (route_in.cpp, route_out.cpp) and link setup (direct_links.cpp) are the same for both.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/kafka.hpp"
#include "trestle/core/message.hpp"
#include "trestle/core/types.hpp"

namespace trestle::kafka {

// What a client's sender link writes to.
struct DirectTarget {
    std::string topic;                 // empty: each message names its own
    std::optional<int32_t> partition;  // empty: by key, or the message's
};

// What a client's receiver link reads.
struct DirectConsume {
    std::string topic;
    std::string group;
    std::optional<int32_t> partition;         // one partition, without the group's rebalancing
    int64_t offset = RD_KAFKA_OFFSET_STORED;  // or a logical offset, or a real one
    std::optional<int64_t> from_time_ms;      // start at the first record at/after it
    bool commit = true;  // false: the client keeps its own checkpoints (Event Hubs)
};

// The records of one message a client sent.
struct DirectProduce {
    std::string topic;                 // empty: the link's
    std::optional<int32_t> partition;  // empty: the link's
    size_t count = 0;                  // records filled in (an Event Hubs batch: one per event)
};

class DirectAccess {
  public:
    virtual ~DirectAccess() = default;

    // "strimzi": the address prefix ($strimzi/) and the name of its links' routes.
    virtual std::string_view id() const = 0;
    // "Strimzi": for log lines.
    virtual std::string_view title() const = 0;
    std::string prefix() const { return "$" + std::string(id()) + "/"; }

    // A request-response node of the dialect's own (not a topic): answered elsewhere.
    virtual bool is_node(std::string_view) const { return false; }
    // A sender's target. False with the dialect's condition when it names no valid topic.
    virtual bool read_target(std::string_view address, DirectTarget& out,
                             core::ErrorCondition& error) const = 0;
    // A receiver's source address and encoded filter-set.
    virtual bool read_source(std::string_view address, std::string_view filter, DirectConsume& out,
                             core::ErrorCondition& error) const = 0;
    // A sender's message as records, written into `records` (grown as needed, reused by the
    // caller). False with `error` when a message (or any event of a batch) cannot be read.
    virtual bool read_produce(const core::Message& m, DirectProduce& out,
                              std::vector<mapping::KafkaRecord>& records, std::string& error) = 0;
    // A consumed record as the client receives it.
    virtual core::MessageRef message(const std::string& topic,
                                     const rd_kafka_message_t* m) const = 0;

    // The condition of a message Kafka refused (delivery report) or the producer could not
    // take, and of a receiver whose consumer could not start.
    virtual core::ErrorCondition produce_failed(rd_kafka_resp_err_t err) const;
    virtual std::string_view produce_condition() const;
    virtual std::string_view subscribe_condition() const;
};

// The dialect whose prefix `address` starts with (null: none).
DirectAccess* direct_access_for(std::string_view address);
// Both dialects (the adapter binds their prefixes).
std::vector<DirectAccess*> direct_dialects();

// The AMQP condition a producer sees when Kafka refuses its message.
core::ErrorCondition condition_for(rd_kafka_resp_err_t err);

}  // namespace trestle::kafka
