#include "mqtt/properties.hpp"

#include "mqtt/codec.hpp"
#include "mqtt/wire.hpp"

namespace trestle::mqtt {

using namespace wire;

namespace {

// Which properties each packet may carry (MQTT 5.0 section 2.2.2.2), as a bitmask by id.
struct PropSet {
    uint64_t bits = 0;
    constexpr PropSet(std::initializer_list<uint8_t> ids) {
        for (uint8_t id : ids) bits |= uint64_t(1) << id;
    }
    bool has(uint8_t id) const { return id < 64 && (bits >> id) & 1; }
};

const PropSet connect_props{prop::session_expiry_interval,
                            prop::receive_maximum,
                            prop::maximum_packet_size,
                            prop::topic_alias_maximum,
                            prop::request_response_information,
                            prop::request_problem_information,
                            prop::user_property,
                            prop::authentication_method,
                            prop::authentication_data};
const PropSet will_props{
    prop::will_delay_interval, prop::payload_format_indicator, prop::message_expiry_interval,
    prop::content_type,        prop::response_topic,           prop::correlation_data,
    prop::user_property};
const PropSet connack_props{prop::session_expiry_interval,
                            prop::receive_maximum,
                            prop::maximum_qos,
                            prop::retain_available,
                            prop::maximum_packet_size,
                            prop::assigned_client_identifier,
                            prop::topic_alias_maximum,
                            prop::reason_string,
                            prop::user_property,
                            prop::wildcard_subscription_available,
                            prop::subscription_identifier_available,
                            prop::shared_subscription_available,
                            prop::server_keep_alive,
                            prop::response_information,
                            prop::server_reference,
                            prop::authentication_method,
                            prop::authentication_data};
const PropSet publish_props{prop::payload_format_indicator,
                            prop::message_expiry_interval,
                            prop::topic_alias,
                            prop::response_topic,
                            prop::correlation_data,
                            prop::user_property,
                            prop::subscription_identifier,
                            prop::content_type};
const PropSet ack_props{prop::reason_string, prop::user_property};
const PropSet subscribe_props{prop::subscription_identifier, prop::user_property};
const PropSet unsubscribe_props{prop::user_property};
const PropSet disconnect_props{prop::session_expiry_interval, prop::reason_string,
                               prop::user_property, prop::server_reference};
const PropSet auth_props{prop::authentication_method, prop::authentication_data,
                         prop::reason_string, prop::user_property};
// Everything: for stored message properties (decode_properties).
const PropSet any_props{prop::payload_format_indicator,
                        prop::message_expiry_interval,
                        prop::content_type,
                        prop::response_topic,
                        prop::correlation_data,
                        prop::subscription_identifier,
                        prop::session_expiry_interval,
                        prop::assigned_client_identifier,
                        prop::server_keep_alive,
                        prop::authentication_method,
                        prop::authentication_data,
                        prop::request_problem_information,
                        prop::will_delay_interval,
                        prop::request_response_information,
                        prop::response_information,
                        prop::server_reference,
                        prop::reason_string,
                        prop::receive_maximum,
                        prop::topic_alias_maximum,
                        prop::topic_alias,
                        prop::maximum_qos,
                        prop::retain_available,
                        prop::user_property,
                        prop::maximum_packet_size,
                        prop::wildcard_subscription_available,
                        prop::subscription_identifier_available,
                        prop::shared_subscription_available};

const PropSet& allowed(PropertiesOf p) {
    switch (p) {
        case PropertiesOf::connect:
            return connect_props;
        case PropertiesOf::will:
            return will_props;
        case PropertiesOf::connack:
            return connack_props;
        case PropertiesOf::publish:
            return publish_props;
        case PropertiesOf::ack:
            return ack_props;
        case PropertiesOf::subscribe:
            return subscribe_props;
        case PropertiesOf::unsubscribe:
            return unsubscribe_props;
        case PropertiesOf::disconnect:
            return disconnect_props;
        case PropertiesOf::auth:
            return auth_props;
        case PropertiesOf::any:
            break;
    }
    return any_props;
}

bool read_properties(In& in, const PropSet& allowed, Properties& out) {
    uint32_t len;
    if (!in.varint(len)) return false;
    if (in.left() < len) return in.fail(reason::malformed_packet, "properties beyond the packet");
    In p(std::string_view(in.pos(), len));
    in.skip(len);
    uint64_t seen = 0;
    while (p.left() > 0) {
        uint32_t id32;
        if (!p.varint(id32)) break;
        if (id32 >= 64 || !allowed.has(static_cast<uint8_t>(id32)))
            return in.fail(reason::protocol_error, "property not allowed in this packet");
        uint8_t id = static_cast<uint8_t>(id32);
        bool repeatable = id == prop::user_property || id == prop::subscription_identifier;
        if (!repeatable && (seen >> id) & 1)
            return in.fail(reason::protocol_error, "property appears twice");
        seen |= uint64_t(1) << id;
        switch (id) {
            case prop::payload_format_indicator: {
                uint8_t v;
                if (!p.u8(v)) break;
                if (v > 1) return in.fail(reason::protocol_error, "bad payload format indicator");
                out.payload_format_indicator = v;
                break;
            }
            case prop::message_expiry_interval: {
                uint32_t v;
                if (p.u32(v)) out.message_expiry_interval = v;
                break;
            }
            case prop::content_type: {
                std::string v;
                if (p.utf8(v)) out.content_type = std::move(v);
                break;
            }
            case prop::response_topic: {
                std::string v;
                if (p.utf8(v)) out.response_topic = std::move(v);
                break;
            }
            case prop::correlation_data: {
                std::string_view v;
                if (p.binary(v)) out.correlation_data = std::string(v);
                break;
            }
            case prop::subscription_identifier: {
                uint32_t v;
                if (!p.varint(v)) break;
                if (v == 0) return in.fail(reason::protocol_error, "subscription identifier 0");
                out.subscription_identifiers.push_back(v);
                break;
            }
            case prop::session_expiry_interval: {
                uint32_t v;
                if (p.u32(v)) out.session_expiry_interval = v;
                break;
            }
            case prop::assigned_client_identifier: {
                std::string v;
                if (p.utf8(v)) out.assigned_client_identifier = std::move(v);
                break;
            }
            case prop::server_keep_alive: {
                uint16_t v;
                if (p.u16(v)) out.server_keep_alive = v;
                break;
            }
            case prop::authentication_method: {
                std::string v;
                if (p.utf8(v)) out.authentication_method = std::move(v);
                break;
            }
            case prop::authentication_data: {
                std::string_view v;
                if (p.binary(v)) out.authentication_data = std::string(v);
                break;
            }
            case prop::request_problem_information:
            case prop::request_response_information:
            case prop::maximum_qos:
            case prop::retain_available:
            case prop::wildcard_subscription_available:
            case prop::subscription_identifier_available:
            case prop::shared_subscription_available: {
                uint8_t v;
                if (!p.u8(v)) break;
                if (v > 1 && id != prop::maximum_qos)
                    return in.fail(reason::protocol_error, "property value must be 0 or 1");
                if (id == prop::maximum_qos && v > 1)
                    return in.fail(reason::protocol_error, "maximum QoS must be 0 or 1");
                if (id == prop::request_problem_information) out.request_problem_information = v;
                if (id == prop::request_response_information) out.request_response_information = v;
                if (id == prop::maximum_qos) out.maximum_qos = v;
                if (id == prop::retain_available) out.retain_available = v;
                if (id == prop::wildcard_subscription_available)
                    out.wildcard_subscription_available = v;
                if (id == prop::subscription_identifier_available)
                    out.subscription_identifier_available = v;
                if (id == prop::shared_subscription_available)
                    out.shared_subscription_available = v;
                break;
            }
            case prop::will_delay_interval: {
                uint32_t v;
                if (p.u32(v)) out.will_delay_interval = v;
                break;
            }
            case prop::response_information: {
                std::string v;
                if (p.utf8(v)) out.response_information = std::move(v);
                break;
            }
            case prop::server_reference: {
                std::string v;
                if (p.utf8(v)) out.server_reference = std::move(v);
                break;
            }
            case prop::reason_string: {
                std::string v;
                if (p.utf8(v)) out.reason_string = std::move(v);
                break;
            }
            case prop::receive_maximum: {
                uint16_t v;
                if (!p.u16(v)) break;
                if (v == 0) return in.fail(reason::protocol_error, "receive maximum 0");
                out.receive_maximum = v;
                break;
            }
            case prop::topic_alias_maximum: {
                uint16_t v;
                if (p.u16(v)) out.topic_alias_maximum = v;
                break;
            }
            case prop::topic_alias: {
                uint16_t v;
                if (p.u16(v)) out.topic_alias = v;
                break;
            }
            case prop::user_property: {
                std::string k, v;
                if (p.utf8(k) && p.utf8(v))
                    out.user_properties.emplace_back(std::move(k), std::move(v));
                break;
            }
            case prop::maximum_packet_size: {
                uint32_t v;
                if (!p.u32(v)) break;
                if (v == 0) return in.fail(reason::protocol_error, "maximum packet size 0");
                out.maximum_packet_size = v;
                break;
            }
            default:
                return in.fail(reason::protocol_error, "unknown property");
        }
        if (!p.ok()) return in.fail(p.err_reason, p.err.c_str());
    }
    return true;
}

}  // namespace

bool read_properties(In& in, PropertiesOf packet, Properties& out) {
    return read_properties(in, allowed(packet), out);
}

void encode_properties(const Properties& p, std::string& out) {
    std::string b;
    encode_property_bytes(p, b);
    put_varint(static_cast<uint32_t>(b.size()), out);
    out += b;
}

void encode_property_bytes(const Properties& p, std::string& b) {
    if (p.payload_format_indicator) {
        b += char(prop::payload_format_indicator);
        b += char(*p.payload_format_indicator);
    }
    if (p.message_expiry_interval) {
        b += char(prop::message_expiry_interval);
        put_u32(*p.message_expiry_interval, b);
    }
    if (p.content_type) {
        b += char(prop::content_type);
        put_str(*p.content_type, b);
    }
    if (p.response_topic) {
        b += char(prop::response_topic);
        put_str(*p.response_topic, b);
    }
    if (p.correlation_data) {
        b += char(prop::correlation_data);
        put_str(*p.correlation_data, b);
    }
    for (uint32_t id : p.subscription_identifiers) {
        b += char(prop::subscription_identifier);
        put_varint(id, b);
    }
    if (p.session_expiry_interval) {
        b += char(prop::session_expiry_interval);
        put_u32(*p.session_expiry_interval, b);
    }
    if (p.assigned_client_identifier) {
        b += char(prop::assigned_client_identifier);
        put_str(*p.assigned_client_identifier, b);
    }
    if (p.server_keep_alive) {
        b += char(prop::server_keep_alive);
        put_u16(*p.server_keep_alive, b);
    }
    if (p.authentication_method) {
        b += char(prop::authentication_method);
        put_str(*p.authentication_method, b);
    }
    if (p.authentication_data) {
        b += char(prop::authentication_data);
        put_str(*p.authentication_data, b);
    }
    if (p.request_problem_information) {
        b += char(prop::request_problem_information);
        b += char(*p.request_problem_information);
    }
    if (p.will_delay_interval) {
        b += char(prop::will_delay_interval);
        put_u32(*p.will_delay_interval, b);
    }
    if (p.request_response_information) {
        b += char(prop::request_response_information);
        b += char(*p.request_response_information);
    }
    if (p.response_information) {
        b += char(prop::response_information);
        put_str(*p.response_information, b);
    }
    if (p.server_reference) {
        b += char(prop::server_reference);
        put_str(*p.server_reference, b);
    }
    if (p.reason_string) {
        b += char(prop::reason_string);
        put_str(*p.reason_string, b);
    }
    if (p.receive_maximum) {
        b += char(prop::receive_maximum);
        put_u16(*p.receive_maximum, b);
    }
    if (p.topic_alias_maximum) {
        b += char(prop::topic_alias_maximum);
        put_u16(*p.topic_alias_maximum, b);
    }
    if (p.topic_alias) {
        b += char(prop::topic_alias);
        put_u16(*p.topic_alias, b);
    }
    if (p.maximum_qos) {
        b += char(prop::maximum_qos);
        b += char(*p.maximum_qos);
    }
    if (p.retain_available) {
        b += char(prop::retain_available);
        b += char(*p.retain_available);
    }
    for (const auto& [k, v] : p.user_properties) {
        b += char(prop::user_property);
        put_str(k, b);
        put_str(v, b);
    }
    if (p.maximum_packet_size) {
        b += char(prop::maximum_packet_size);
        put_u32(*p.maximum_packet_size, b);
    }
    if (p.wildcard_subscription_available) {
        b += char(prop::wildcard_subscription_available);
        b += char(*p.wildcard_subscription_available);
    }
    if (p.subscription_identifier_available) {
        b += char(prop::subscription_identifier_available);
        b += char(*p.subscription_identifier_available);
    }
    if (p.shared_subscription_available) {
        b += char(prop::shared_subscription_available);
        b += char(*p.shared_subscription_available);
    }
}

bool decode_property_bytes(std::string_view bytes, Properties& out, std::string& err) {
    std::string framed;
    put_varint(static_cast<uint32_t>(bytes.size()), framed);
    framed.append(bytes);
    In in(framed);
    if (!read_properties(in, PropertiesOf::any, out) || in.left() != 0) {
        err = in.err.empty() ? "trailing bytes after properties" : in.err;
        return false;
    }
    return true;
}

}  // namespace trestle::mqtt
