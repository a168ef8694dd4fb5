#include "mapping/strimzi.hpp"

#include <algorithm>

#include "amqp/codec.hpp"
#include "mapping/mqtt_amqp.hpp"

namespace trestle::mapping {

using detail::annotated;
using detail::parse_int;
using detail::plain;

namespace strimzi {

namespace {

constexpr std::string_view k_partition = "x-opt-bridge.partition";
constexpr std::string_view k_key = "x-opt-bridge.key";
constexpr std::string_view k_offset = "x-opt-bridge.offset";
constexpr std::string_view k_topic = "x-opt-bridge.topic";

}  // namespace

std::string topic_name(std::string_view address) {
    std::string t(address);
    std::replace(t.begin(), t.end(), '/', '.');
    return t;
}

bool read_produce(const core::Message& m, Produce& out, KafkaRecord& record, std::string& error) {
    return read_direct_produce(m, k_partition, k_key, out, record, error);
}

bool read_consume(std::string_view address, std::string_view filter, Consume& out,
                  core::ErrorCondition& error) {
    constexpr std::string_view sep = "/group.id/";
    auto at = address.find(sep);
    if (at == std::string_view::npos || at == 0 || at + sep.size() >= address.size()) {
        error = {std::string(condition::no_group_id),
                 "the source address must be <topic>/group.id/<group>"};
        return false;
    }
    out.topic = topic_name(address.substr(0, at));
    out.group.assign(address.substr(at + sep.size()));
    if (!filter.empty()) {
        amqp::Reader r(filter);
        amqp::Value fs;
        if (!amqp::read_value(r, fs) || fs.type != amqp::Value::Type::map) {
            error = {std::string(condition::wrong_filter), "the filter-set is not a map"};
            return false;
        }
        for (const auto& e : fs.entries) {
            if (!e.key.is_textual()) {
                error = {std::string(condition::wrong_filter), "a filter key is not a symbol"};
                return false;
            }
            const amqp::Value& v = plain(e.value);
            if (e.key.bytes == partition_filter) {
                auto n = v.as_integer();
                if (!n || *n < 0 || *n > INT32_MAX) {
                    error = {std::string(condition::wrong_partition_filter),
                             "the partition filter must be a partition number"};
                    return false;
                }
                out.partition = static_cast<int32_t>(*n);
            } else if (e.key.bytes == offset_filter) {
                auto n = v.as_integer();
                if (!n || *n < 0) {
                    error = {std::string(condition::wrong_offset_filter),
                             "the offset filter must be an offset (0 or more)"};
                    return false;
                }
                out.offset = *n;
            } else {
                error = {std::string(condition::wrong_filter),
                         "unknown filter '" + e.key.bytes + "'"};
                return false;
            }
        }
    }
    if (out.offset && !out.partition) {
        error = {std::string(condition::no_partition_filter),
                 "an offset filter needs a partition filter"};
        return false;
    }
    return true;
}

core::MessageRef message(std::string_view topic, int32_t partition, int64_t offset,
                         std::optional<std::string_view> key, std::string_view value) {
    return annotated(
        [&](amqp::Writer& w) -> uint32_t {
            w.symbol(k_topic);
            w.string(topic);
            w.symbol(k_partition);
            w.int32(partition);
            w.symbol(k_offset);
            w.int64(offset);
            if (!key) return 6;
            w.symbol(k_key);
            w.string(*key);
            return 8;
        },
        value);
}

}  // namespace strimzi

}  // namespace trestle::mapping
