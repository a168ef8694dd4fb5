#include "mapping/direct_record.hpp"

#include <algorithm>

#include "mapping/mqtt_amqp.hpp"

namespace trestle::mapping {

namespace detail {

const amqp::Value& plain(const amqp::Value& v) {
    if (v.type == amqp::Value::Type::described && v.items.size() == 2) return v.items[1];
    return v;
}

bool parse_int(std::string_view s, int64_t& out) {
    if (s.empty() || s.size() > 19) return false;
    bool neg = s[0] == '-';
    if (neg) s.remove_prefix(1);
    if (s.empty()) return false;
    int64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    out = neg ? -v : v;
    return true;
}

core::MessageRef annotated(const std::function<uint32_t(amqp::Writer&)>& annotate,
                           std::string_view value, const std::vector<HeaderView>& properties) {
    amqp::Writer w;
    w.descriptor(static_cast<uint8_t>(amqp::Section::message_annotations));
    size_t ma = w.begin_map();
    w.end_map(ma, annotate(w));
    if (!properties.empty()) {
        w.descriptor(static_cast<uint8_t>(amqp::Section::application_properties));
        size_t ap = w.begin_map();
        for (const auto& [name, v] : properties) {
            w.string(name);
            w.string(v);
        }
        w.end_map(ap, static_cast<uint32_t>(properties.size() * 2));
    }
    w.descriptor(static_cast<uint8_t>(amqp::Section::data));
    w.binary(value);
    core::Message* m = core::Message::copy_of(w.out(), core::MessageFormat::amqp);
    m->qos = 1;
    m->empty_payload = value.empty();
    return core::MessageRef::adopt(m);
}

}  // namespace detail

using detail::plain;

bool read_direct_produce(const core::Message& m, std::string_view partition_annotation,
                         std::string_view key_annotation, Produce& out, KafkaRecord& record,
                         std::string& error, bool properties_as_headers) {
    if (m.format() != core::MessageFormat::amqp) {
        error = "not an AMQP message";
        return false;
    }
    return read_direct_produce(m.bytes(), partition_annotation, key_annotation, out, record, error,
                               properties_as_headers);
}

bool read_direct_produce(std::string_view message, std::string_view partition_annotation,
                         std::string_view key_annotation, Produce& out, KafkaRecord& record,
                         std::string& error, bool properties_as_headers) {
    amqp::MessageLayout l;
    if (std::string e = amqp::scan_message(message, l); !e.empty()) {
        error = e;
        return false;
    }
    out.topic.assign(l.to);
    std::replace(out.topic.begin(), out.topic.end(), '/', '.');
    out.partition.reset();
    record.has_key = false;
    record.key.clear();
    record.headers.clear();
    record.timestamp_ms = 0;
    if (l.message_annotations.present()) {
        amqp::Reader r(message.substr(l.message_annotations.offset, l.message_annotations.size));
        amqp::Value ma;
        if (!r.read_descriptor() || !amqp::read_value(r, ma) || ma.type != amqp::Value::Type::map) {
            error = "message-annotations unreadable";
            return false;
        }
        if (const amqp::Value* p =
                partition_annotation.empty() ? nullptr : ma.get(partition_annotation)) {
            auto n = plain(*p).as_integer();
            if (!n || *n < 0 || *n > INT32_MAX) {
                error = std::string(partition_annotation) + " is not a partition number";
                return false;
            }
            out.partition = static_cast<int32_t>(*n);
        }
        if (const amqp::Value* k = key_annotation.empty() ? nullptr : ma.get(key_annotation)) {
            record.key = plain(*k).to_text();
            record.has_key = true;
        }
    }
    if (properties_as_headers && l.application_properties.present()) {
        amqp::Reader r(
            message.substr(l.application_properties.offset, l.application_properties.size));
        amqp::Value ap;
        if (!r.read_descriptor() || !amqp::read_value(r, ap) || ap.type != amqp::Value::Type::map) {
            error = "application-properties unreadable";
            return false;
        }
        for (const auto& [k, v] : ap.entries)
            if (k.is_textual()) record.headers.emplace_back(k.bytes, v.to_text());
    }
    switch (body_payload(message, l, record.value)) {
        case BodyKind::bytes:
        case BodyKind::text:
            return true;
        case BodyKind::encoded:
            error = "the body must be data sections or an amqp-value binary or string";
            return false;
        case BodyKind::unreadable:
            break;
    }
    error = "body unreadable";
    return false;
}

}  // namespace trestle::mapping
