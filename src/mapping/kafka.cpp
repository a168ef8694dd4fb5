#include "mapping/kafka.hpp"

#include <charconv>

#include "amqp/codec.hpp"
#include "mapping/mqtt_amqp.hpp"
#include "mqtt/codec.hpp"
#include "mqtt/message.hpp"

namespace trestle::mapping {

namespace {

namespace h = kafka_header;

constexpr std::string_view k_amqp_body = "application/x-amqp-body";

bool reserved(std::string_view name) {
    return name == h::address || name == h::qos || name == h::retain || name == h::format ||
           name == h::expires_at || name == h::content_type || name == h::reply_to ||
           name == h::correlation_id || name == h::message_id || name == h::subject ||
           name == h::dead_letter_reason;
}

std::string_view header(const std::vector<HeaderView>& hs, std::string_view name) {
    for (const auto& [k, v] : hs)
        if (k == name) return v;
    return {};
}

bool has_header(const std::vector<HeaderView>& hs, std::string_view name) {
    for (const auto& [k, v] : hs)
        if (k == name) return true;
    return false;
}

// The key (or address header) and the headers of a record whose value is set: shared by both
// message forms. `props` are the message's MQTT properties (or those of its MQTT form).
void finish_record(const core::Message& m, std::string_view address,
                   const KafkaRecordOptions& options, uint64_t now_ms, int64_t epoch_ms,
                   const mqtt::Properties& props, const AmqpAsMqtt* amqp, KafkaRecord& out) {
    if (options.key_is_address) {
        out.key.assign(address);
        out.has_key = true;
    } else {
        out.headers.emplace_back(h::address, address);
    }
    if (!options.headers) return;

    auto& hs = out.headers;
    // QoS 1 is what a record without the header means: the common record carries none (and
    // is cheaper to produce: librdkafka allocates per header).
    if (m.qos != 1)
        hs.emplace_back(h::qos, std::string(1, static_cast<char>('0' + (m.qos > 2 ? 2 : m.qos))));
    if (m.retain) hs.emplace_back(h::retain, "true");
    if (m.expires_at_ms) {
        int64_t left =
            m.expires_at_ms > now_ms ? static_cast<int64_t>(m.expires_at_ms - now_ms) : 0;
        hs.emplace_back(h::expires_at, std::to_string(epoch_ms + left));
    }
    if (props.payload_format_indicator.value_or(0) == 1) hs.emplace_back(h::format, "utf-8");
    if (props.content_type) hs.emplace_back(h::content_type, *props.content_type);
    if (props.response_topic) hs.emplace_back(h::reply_to, *props.response_topic);
    if (props.correlation_data) hs.emplace_back(h::correlation_id, *props.correlation_data);
    if (amqp && !amqp->message_id.empty()) hs.emplace_back(h::message_id, amqp->message_id);
    if (amqp && !amqp->subject.empty()) hs.emplace_back(h::subject, amqp->subject);
    for (const auto& [k, val] : props.user_properties)
        if (!reserved(k)) hs.emplace_back(k, val);
}

// An AMQP message, read once into the fields its MQTT form would have (no MQTT message built
// and decoded again).
bool record_from_amqp(const core::Message& m, std::string_view address,
                      const KafkaRecordOptions& options, uint64_t now_ms, int64_t epoch_ms,
                      KafkaRecord& out) {
    AmqpAsMqtt fields;
    fields.payload.swap(out.value);  // the body is read into the record's reused buffer
    bool ok = read_amqp_as_mqtt(m, address, fields);
    out.value.swap(fields.payload);
    if (!ok) return false;
    out.timestamp_ms = fields.creation_time_ms;
    finish_record(m, fields.topic, options, now_ms, epoch_ms, fields.properties, &fields, out);
    return true;
}

// An MQTT property set is two dozen fields to set up and tear down: the common record (an
// MQTT message without properties) uses this one.
const mqtt::Properties no_properties;

}  // namespace

bool record_from_message(const core::Message& m, std::string_view address,
                         const KafkaRecordOptions& options, uint64_t now_ms, int64_t epoch_ms,
                         KafkaRecord& out) {
    // Cleared, not replaced: a reused record keeps its buffers (no allocation per message).
    out.key.clear();
    out.has_key = false;
    out.value.clear();
    out.headers.clear();
    out.timestamp_ms = 0;
    if (m.format() == core::MessageFormat::amqp)
        return record_from_amqp(m, address, options, now_ms, epoch_ms, out);

    mqtt::MessageView v;
    if (!mqtt::view_message(m, v)) return false;
    if (address.empty()) address = v.topic;
    out.value.assign(v.payload);
    if (!options.headers || v.properties.empty()) {
        finish_record(m, address, options, now_ms, epoch_ms, no_properties, nullptr, out);
        return true;
    }
    mqtt::Properties props;
    std::string err;
    if (!mqtt::decode_property_bytes(v.properties, props, err)) return false;
    finish_record(m, address, options, now_ms, epoch_ms, props, nullptr, out);
    return true;
}

std::string_view record_address(std::string_view key, const std::vector<HeaderView>& headers) {
    std::string_view a = header(headers, h::address);
    return a.empty() ? key : a;
}

core::MessageRef message_from_record(std::string_view address, std::string_view value,
                                     const std::vector<HeaderView>& headers, int64_t timestamp_ms,
                                     uint64_t now_ms, int64_t epoch_ms, bool& expired) {
    expired = false;
    if (headers.empty()) {
        // The plain record (the common one): a QoS 1 payload, no property set to build.
        core::MessageRef out = mqtt::make_message(address, {}, value);
        out->qos = 1;
        return out;
    }
    uint64_t expires_at = 0;
    if (std::string_view e = header(headers, h::expires_at); !e.empty()) {
        int64_t at = 0;
        auto [p, ec] = std::from_chars(e.data(), e.data() + e.size(), at);
        if (ec == std::errc() && p == e.data() + e.size()) {
            if (at <= epoch_ms) {
                expired = true;
                return {};
            }
            expires_at = now_ms + static_cast<uint64_t>(at - epoch_ms);
        }
    }
    uint8_t qos = 1;
    if (std::string_view q = header(headers, h::qos); q.size() == 1 && q[0] >= '0' && q[0] <= '2')
        qos = static_cast<uint8_t>(q[0] - '0');
    bool retain = header(headers, h::retain) == "true";

    mqtt::Properties props;
    if (header(headers, h::format) == "utf-8" && mqtt::valid_utf8(value))
        props.payload_format_indicator = 1;
    auto text = [&](std::string_view name) -> std::optional<std::string> {
        if (!has_header(headers, name)) return std::nullopt;
        std::string_view v = header(headers, name);
        if (!mqtt::valid_utf8(v)) return std::nullopt;
        return std::string(v);
    };
    props.content_type = text(h::content_type);
    props.response_topic = text(h::reply_to);
    if (has_header(headers, h::correlation_id))
        props.correlation_data = std::string(header(headers, h::correlation_id));
    for (const auto& [k, v] : headers)
        if (!reserved(k) && mqtt::valid_utf8(k) && mqtt::valid_utf8(v))
            props.user_properties.emplace_back(std::string(k), std::string(v));

    bool raw_body = props.content_type && *props.content_type == k_amqp_body;
    auto message_id = text(h::message_id);
    auto subject = text(h::subject);
    core::MessageRef out;
    if (message_id || subject || raw_body) {
        // AMQP-only properties: the AMQP form keeps them (MQTT subscribers get it converted).
        AmqpFields f;
        f.topic = address;
        f.payload = value;
        f.raw_body = raw_body;
        f.properties = std::move(props);
        f.qos = qos;
        f.retain = retain;
        if (expires_at) f.ttl_ms = expires_at - now_ms;
        f.message_id = std::move(message_id);
        f.subject = std::move(subject);
        f.creation_time_ms = timestamp_ms > 0 ? timestamp_ms : 0;
        out = amqp_from_fields(f);
        // Any producer can write this content type: a value that is not AMQP body sections
        // must not reach AMQP receivers as a malformed message.
        amqp::MessageLayout l;
        if (raw_body && !amqp::scan_message(out->bytes(), l).empty()) return {};
    } else {
        std::string encoded;
        mqtt::encode_property_bytes(props, encoded);
        out = mqtt::make_message(address, encoded, value);
    }
    out->qos = qos;
    out->retain = retain;
    out->empty_payload = value.empty();
    out->expires_at_ms = expires_at;
    return out;
}

}  // namespace trestle::mapping
