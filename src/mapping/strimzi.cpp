#include "mapping/strimzi.hpp"

#include <algorithm>

#include "amqp/codec.hpp"

namespace trestle::mapping::strimzi {

namespace {

constexpr std::string_view k_partition = "x-opt-bridge.partition";
constexpr std::string_view k_key = "x-opt-bridge.key";
constexpr std::string_view k_offset = "x-opt-bridge.offset";
constexpr std::string_view k_topic = "x-opt-bridge.topic";

// A value, or the value inside a described one (filters are often described).
const amqp::Value& plain(const amqp::Value& v) {
    if (v.type == amqp::Value::Type::described && v.items.size() == 2) return v.items[1];
    return v;
}

}  // namespace

std::string topic_name(std::string_view address) {
    std::string t(address);
    std::replace(t.begin(), t.end(), '/', '.');
    return t;
}

bool read_produce(const core::Message& m, Produce& out, std::string& error) {
    if (m.format() != core::MessageFormat::amqp) {
        error = "not an AMQP message";
        return false;
    }
    amqp::MessageLayout l;
    if (std::string e = amqp::scan_message(m.bytes(), l); !e.empty()) {
        error = e;
        return false;
    }
    out.topic = topic_name(l.to);
    if (l.message_annotations.present()) {
        amqp::Reader r(m.bytes().substr(l.message_annotations.offset, l.message_annotations.size));
        amqp::Value ma;
        if (!r.read_descriptor() || !amqp::read_value(r, ma) || ma.type != amqp::Value::Type::map) {
            error = "message-annotations unreadable";
            return false;
        }
        if (const amqp::Value* p = ma.get(k_partition)) {
            auto n = plain(*p).as_integer();
            if (!n || *n < 0 || *n > INT32_MAX) {
                error = std::string(k_partition) + " is not a partition number";
                return false;
            }
            out.partition = static_cast<int32_t>(*n);
        }
        if (const amqp::Value* k = ma.get(k_key)) out.key = plain(*k).to_text();
    }
    // The body: data sections concatenated, or an amqp-value's binary/string.
    amqp::Reader r(m.bytes().substr(l.body.offset, l.body.size));
    out.value.clear();
    while (l.body.present() && !r.at_end()) {
        auto code = r.read_descriptor();
        amqp::Value v;
        if (!code || !amqp::read_value(r, v)) {
            error = "body unreadable";
            return false;
        }
        if (*code == static_cast<uint64_t>(amqp::Section::data) && v.type == amqp::Value::Type::binary) {
            out.value += v.bytes;
        } else if (*code == static_cast<uint64_t>(amqp::Section::amqp_value) &&
                   (v.type == amqp::Value::Type::binary || v.is_textual())) {
            out.value = v.bytes;
        } else if (*code == static_cast<uint64_t>(amqp::Section::amqp_value) &&
                   v.type == amqp::Value::Type::null) {
            out.value.clear();
        } else {
            error = "the body must be data sections or an amqp-value binary or string";
            return false;
        }
    }
    return true;
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
                error = {std::string(condition::wrong_filter), "unknown filter '" + e.key.bytes + "'"};
                return false;
            }
        }
    }
    if (out.offset && !out.partition) {
        error = {std::string(condition::no_partition_filter), "an offset filter needs a partition filter"};
        return false;
    }
    return true;
}

core::MessageRef message(std::string_view topic, int32_t partition, int64_t offset,
                         const std::string* key, std::string_view value) {
    amqp::Writer w;
    w.descriptor(static_cast<uint8_t>(amqp::Section::message_annotations));
    size_t ma = w.begin_map();
    uint32_t n = 6;
    w.symbol(k_topic);
    w.string(topic);
    w.symbol(k_partition);
    w.int32(partition);
    w.symbol(k_offset);
    w.int64(offset);
    if (key) {
        w.symbol(k_key);
        w.string(*key);
        n += 2;
    }
    w.end_map(ma, n);
    w.descriptor(static_cast<uint8_t>(amqp::Section::data));
    w.binary(value);
    core::Message* m = core::Message::copy_of(w.out(), core::MessageFormat::amqp);
    m->qos = 1;
    m->empty_payload = value.empty();
    return core::MessageRef::adopt(m);
}

}  // namespace trestle::mapping::strimzi
