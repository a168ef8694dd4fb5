// What the Kafka adapter's produce and consume paths share: producing one record, reading a
// consumed one under a route's settings, and the module's logger. Included by src/kafka only.
#pragma once

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "kafka/adapter.hpp"
#include "kafka/fetch_thread.hpp"
#include "mapping/kafka.hpp"
#include "trestle/core/message.hpp"
#include "util/log.hpp"

namespace trestle::kafka {

// This module's logger (its level is set through the management `log` entity).
inline spdlog::logger& logger() {
    return logs::get(logs::Module::KAFKA);
}

// By topic handle (a route's own topic) or, without one, by name (a client's direct topic, a
// dead letter). A record without a timestamp of its own gets librdkafka's clock, as on the
// producer thread: one rule for every record.
rd_kafka_resp_err_t produce(rd_kafka_t* rk, rd_kafka_topic_t* rkt, const std::string& topic,
                            const mapping::KafkaRecord& r, void* opaque,
                            int32_t partition = RD_KAFKA_PARTITION_UA);

// "0,1,3": the partitions of a list, for log lines.
std::string partition_text(const rd_kafka_topic_partition_list_t* l);

// The address and routable message of a consumed record under a route's settings.
RecordFate read_record(const rd_kafka_message_t* m, const RouteSettings& s, uint64_t now_ms,
                       int64_t wall_ms, std::string_view& address, core::MessageRef& msg);

// A consumed record as it is, for a dead letter.
mapping::KafkaRecord record_of(const rd_kafka_message_t* m);

}  // namespace trestle::kafka
