#include "mapping/mqtt_amqp.hpp"

#include "mqtt/codec.hpp"
#include "mqtt/message.hpp"

namespace trestle::mapping {

namespace {

constexpr std::string_view k_retain = "x-opt-retain-message";
constexpr std::string_view k_qos = "x-opt-mqtt-qos";

// Reads the value of one section (its descriptor already consumed by the layout span).
bool section_value(const core::Message& m, const amqp::Span& span, amqp::Value& out) {
    if (!span.present()) return false;
    amqp::Reader r(m.bytes().substr(span.offset, span.size));
    if (!r.read_descriptor()) return false;
    return amqp::read_value(r, out);
}

// Reads the items of a list section whose index is in `wanted` (bit i = item i, i < 32) into
// one reused value each and calls use(i, value); the others are skipped undecoded. Per item,
// not the whole list as one value: no vector of items allocated per message.
template <typename Use>
bool list_section(const core::Message& m, const amqp::Span& span, uint32_t wanted, Use use) {
    if (!span.present()) return false;
    amqp::Reader r(m.bytes().substr(span.offset, span.size));
    if (!r.read_descriptor()) return false;
    size_t end = 0;
    auto n = r.enter_list(end);
    if (!n) return false;
    amqp::Value v;
    for (uint32_t i = 0; i < *n; ++i) {
        if (i >= 32 || !(wanted & (1u << i))) {
            if (!r.skip_value()) return false;
            continue;
        }
        if (!amqp::read_value(r, v)) return false;
        use(i, v);
    }
    return true;
}

// A data section's binary or an amqp-value string or binary, as it is in the message (no
// copy); nothing for other values (read with amqp::Value instead).
std::optional<std::string_view> plain_body(amqp::Reader& r, uint64_t code, bool& text) {
    auto c = r.peek_code();
    if (!c) return std::nullopt;
    bool bin = *c == 0xa0 || *c == 0xb0;
    text = code == 0x77 && (*c == 0xa1 || *c == 0xb1);
    if (!(code == 0x75 || code == 0x77) || !(bin || text)) return std::nullopt;
    return r.read_bytes_like();
}

}  // namespace

core::MessageRef amqp_from_fields(const AmqpFields& f) {
    const mqtt::Properties& props = f.properties;
    amqp::Writer w;
    // header: durable, priority, ttl, first-acquirer, delivery-count
    w.descriptor(0x70);
    size_t h = w.begin_list();
    uint32_t n = 1;
    w.boolean(f.qos > 0);
    if (f.ttl_ms || f.dup) {
        w.null();
        if (f.ttl_ms)
            w.uint(static_cast<uint32_t>(f.ttl_ms > UINT32_MAX ? UINT32_MAX : f.ttl_ms));
        else
            w.null();
        n = 3;
        if (f.dup) {
            w.null();
            w.uint(1);
            n = 5;
        }
    }
    w.end_list(h, n);

    w.descriptor(0x72);
    size_t ma = w.begin_map();
    uint32_t ma_n = 2;
    w.symbol(k_qos);
    w.int32(f.qos);
    if (f.retain) {
        w.symbol(k_retain);
        w.boolean(true);
        ma_n += 2;
    }
    for (const auto& [k, v] : f.annotations) {
        w.symbol(k);
        w.string(v);
        ma_n += 2;
    }
    w.end_map(ma, ma_n);

    // properties: message-id, user-id, to, subject, reply-to, correlation-id, content-type,
    // content-encoding, absolute-expiry-time, creation-time
    w.descriptor(0x73);
    size_t pl = w.begin_list();
    if (f.message_id)
        w.string(*f.message_id);
    else
        w.null();
    w.null();
    w.string(f.topic);
    uint32_t pn = 3;
    bool content_type = props.content_type && !f.raw_body;
    if (f.subject || props.response_topic || props.correlation_data || content_type ||
        f.creation_time_ms) {
        if (f.subject)
            w.string(*f.subject);
        else
            w.null();
        if (props.response_topic)
            w.string(*props.response_topic);
        else
            w.null();
        if (props.correlation_data)
            w.binary(*props.correlation_data);
        else
            w.null();
        if (content_type)
            w.symbol(*props.content_type);
        else
            w.null();
        pn = 7;
        if (f.creation_time_ms) {
            w.null();
            w.null();
            w.timestamp(f.creation_time_ms);
            pn = 10;
        }
    }
    w.end_list(pl, pn);

    if (!props.user_properties.empty()) {
        w.descriptor(0x74);
        size_t ap = w.begin_map();
        uint32_t count = 0;
        std::vector<std::string_view> seen;
        for (const auto& [k, val] : props.user_properties) {
            bool dupkey = false;
            for (auto s : seen) dupkey |= s == k;
            if (dupkey) continue;  // AMQP map keys are unique: the first value wins
            seen.push_back(k);
            w.string(k);
            w.string(val);
            count += 2;
        }
        w.end_map(ap, count);
    }

    if (f.raw_body) {
        w.out() += f.payload;  // already AMQP body sections
    } else if (props.payload_format_indicator.value_or(0) == 1) {
        w.descriptor(0x77);
        w.string(f.payload);
    } else {
        w.descriptor(0x75);
        w.binary(f.payload);
    }
    core::Message* out = core::Message::copy_of(w.out(), core::MessageFormat::amqp);
    out->retain = f.retain;
    out->qos = f.qos;
    out->empty_payload = f.payload.empty();
    return core::MessageRef::adopt(out);
}

core::MessageRef amqp_from_mqtt(const core::Message& m, uint64_t now_ms, bool dup) {
    mqtt::MessageView v;
    if (!mqtt::view_message(m, v)) return {};
    AmqpFields f;
    std::string err;
    mqtt::decode_property_bytes(v.properties, f.properties, err);  // stored by us: well-formed
    f.topic = v.topic;
    f.payload = v.payload;
    f.qos = m.qos;
    f.retain = m.retain;
    f.dup = dup;
    if (m.expires_at_ms) f.ttl_ms = m.expires_at_ms > now_ms ? m.expires_at_ms - now_ms : 1;
    core::MessageRef out = amqp_from_fields(f);
    out->empty_payload = m.empty_payload;
    out->expires_at_ms = m.expires_at_ms;
    return out;
}

namespace {

struct Traits {
    bool retain = false;
    bool empty_payload = false;
    uint8_t qos = 0;
    uint64_t expires_at_ms = 0;
};

// What the core and MQTT need to know of an AMQP message, from its sections.
Traits read_traits(const core::Message& m, const amqp::MessageLayout& l, uint64_t now_ms) {
    Traits t;
    bool durable = false;
    list_section(m, l.header, 0b101, [&](uint32_t i, const amqp::Value& v) {
        if (i == 0 && v.type == amqp::Value::Type::boolean) durable = v.b;
        if (i == 2)
            if (auto ttl = v.as_integer(); ttl && *ttl > 0)
                t.expires_at_ms = now_ms + static_cast<uint64_t>(*ttl);
    });
    t.qos = durable ? 1 : 0;
    amqp::Value ma;
    if (section_value(m, l.message_annotations, ma) && ma.type == amqp::Value::Type::map) {
        if (const amqp::Value* r = ma.get(k_retain); r && r->type == amqp::Value::Type::boolean)
            t.retain = r->b;
        if (const amqp::Value* q = ma.get(k_qos))
            if (auto qi = q->as_integer(); qi && *qi >= 0 && *qi <= 2)
                t.qos = static_cast<uint8_t>(*qi);
    }
    // An empty body (or an empty data / string value) deletes a retained message.
    bool empty = !l.body.present();
    if (!empty) {
        amqp::Reader r(m.bytes().substr(l.body.offset, l.body.size));
        auto code = r.read_descriptor();
        // Binary, string, symbol or null: read_bytes_like reads exactly these, without a copy.
        if (code && (*code == 0x75 || *code == 0x77))
            if (auto b = r.read_bytes_like(); b && r.at_end()) empty = b->empty();
    }
    t.empty_payload = empty;
    return t;
}

}  // namespace

BodyKind body_payload(std::string_view message, const amqp::MessageLayout& l,
                      std::string& payload) {
    payload.clear();
    BodyKind kind = BodyKind::bytes;
    if (!l.body.present()) return kind;
    amqp::Reader r(message.substr(l.body.offset, l.body.size));
    // Data sections concatenate; an amqp-value string or binary is its content.
    while (!r.at_end()) {
        size_t at = r.offset();
        auto code = r.read_descriptor();
        if (!code) return BodyKind::unreadable;
        bool text = false;
        if (auto plain = plain_body(r, *code, text)) {  // the common bodies, not copied twice
            payload += *plain;
            if (text && kind == BodyKind::bytes) kind = BodyKind::text;
            continue;
        }
        amqp::Value b;
        if (!amqp::read_value(r, b)) return BodyKind::unreadable;
        if (*code == 0x75 && b.type == amqp::Value::Type::binary) {
            payload += b.bytes;
        } else if (*code == 0x77 && b.type == amqp::Value::Type::string) {
            payload += b.bytes;
            if (kind == BodyKind::bytes) kind = BodyKind::text;
        } else if (*code == 0x77 && b.type == amqp::Value::Type::binary) {
            payload += b.bytes;
        } else {
            payload += message.substr(l.body.offset + at, r.offset() - at);
            kind = BodyKind::encoded;
        }
    }
    return kind;
}

void inspect_amqp(core::Message& m, const amqp::MessageLayout& l, uint64_t now_ms) {
    Traits t = read_traits(m, l, now_ms);
    m.retain = t.retain;
    m.empty_payload = t.empty_payload;
    m.qos = t.qos;
    if (t.expires_at_ms) m.expires_at_ms = t.expires_at_ms;
}

bool read_amqp_as_mqtt(const core::Message& m, std::string_view topic, AmqpAsMqtt& out) {
    amqp::MessageLayout& l = out.layout;
    if (!amqp::scan_message(m.bytes(), l).empty()) return false;
    out.topic = topic.empty() ? std::string_view(l.to) : topic;
    if (out.topic.empty()) return false;

    mqtt::Properties& props = out.properties;
    // message-id, subject, reply-to, correlation-id, content-type, creation-time
    constexpr uint32_t k_fields = 1u << 0 | 1u << 3 | 1u << 4 | 1u << 5 | 1u << 6 | 1u << 9;
    list_section(m, l.properties, k_fields, [&](uint32_t i, const amqp::Value& v) {
        if (v.type == amqp::Value::Type::null) return;
        switch (i) {
            case 0:
                out.message_id = v.to_text();
                break;
            case 3:
                if (v.is_textual()) out.subject = v.bytes;
                break;
            case 4:
                // A reply-to may be a dynamic AMQP address: usable as a response topic as it is.
                if (v.is_textual() && !v.bytes.empty() && mqtt::valid_utf8(v.bytes))
                    props.response_topic = v.bytes;
                break;
            case 5:
                props.correlation_data = v.to_text();
                break;
            case 6:
                if (v.is_textual() && mqtt::valid_utf8(v.bytes)) props.content_type = v.bytes;
                break;
            case 9:
                if (v.type == amqp::Value::Type::timestamp) out.creation_time_ms = v.i;
                break;
        }
    });
    amqp::Value ap;
    if (section_value(m, l.application_properties, ap) && ap.type == amqp::Value::Type::map)
        for (const auto& [k, v] : ap.entries) {
            if (!k.is_textual()) continue;
            std::string val = v.to_text();
            if (mqtt::valid_utf8(k.bytes) && mqtt::valid_utf8(val))
                props.user_properties.emplace_back(k.bytes, std::move(val));
        }

    BodyKind kind = body_payload(m.bytes(), l, out.payload);
    if (kind == BodyKind::text) props.payload_format_indicator = 1;
    // Other body types travel as their AMQP encoding.
    if (kind == BodyKind::encoded && !props.content_type)
        props.content_type = "application/x-amqp-body";
    return true;
}

core::MessageRef mqtt_from_amqp(const core::Message& m, std::string_view topic, uint64_t now_ms) {
    AmqpAsMqtt f;
    if (!read_amqp_as_mqtt(m, topic, f)) return {};
    std::string encoded;
    mqtt::encode_property_bytes(f.properties, encoded);
    core::MessageRef out = mqtt::make_message(f.topic, encoded, f.payload);
    Traits t = read_traits(m, f.layout, now_ms);
    out->retain = t.retain;
    out->qos = t.qos;
    out->expires_at_ms = m.expires_at_ms ? m.expires_at_ms : t.expires_at_ms;
    return out;
}

const core::Message* as_amqp(const core::Message& m, uint64_t now_ms) {
    if (m.format() == core::MessageFormat::amqp) return &m;
    if (!m.converted()) {
        core::MessageRef c = amqp_from_mqtt(m, now_ms);
        if (!c) return nullptr;
        core::Message* raw = c.get();
        raw->ref();
        const_cast<core::Message&>(m).set_converted(raw);
    }
    return m.converted();
}

}  // namespace trestle::mapping
