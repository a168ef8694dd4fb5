// Direct Kafka topic access for AMQP clients (mapping/strimzi.hpp, mapping/eventhubs.hpp): the
// record of a message whose body is the record's value, and what both dialects share. Pure
// functions: no I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "amqp/codec.hpp"
#include "mapping/kafka.hpp"
#include "trestle/core/message.hpp"

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
namespace detail {
// A value, or the value inside a described one (filters are often described).
const amqp::Value& plain(const amqp::Value& v);
// A decimal integer, optionally negative, of at most 19 digits.
bool parse_int(std::string_view s, int64_t& out);
// A record as a receiver gets it: the dialect's annotations (written by `annotate`, which
// returns how many keys and values it wrote), its application properties, then the value as
// one data section.
core::MessageRef annotated(const std::function<uint32_t(amqp::Writer&)>& annotate,
                           std::string_view value, const std::vector<HeaderView>& properties = {});
}  // namespace detail

}  // namespace trestle::mapping
