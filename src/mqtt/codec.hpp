// MQTT 3.1.1 and 5.0 packets: decoding from bytes with every check the specs require of a
// server (each failure names the MQTT 5 reason code to answer with), and encoding.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mqtt/properties.hpp"

namespace trestle::mqtt {

enum class PacketType : uint8_t {
    connect = 1,
    connack,
    publish,
    puback,
    pubrec,
    pubrel,
    pubcomp,
    subscribe,
    suback,
    unsubscribe,
    unsuback,
    pingreq,
    pingresp,
    disconnect,
    auth
};

// Protocol levels on the wire.
inline constexpr uint8_t v311 = 4;
inline constexpr uint8_t v5 = 5;

// MQTT 5 reason codes (also used internally to classify 3.1.1 errors).
namespace reason {
inline constexpr uint8_t success = 0x00;
inline constexpr uint8_t granted_qos1 = 0x01;
inline constexpr uint8_t granted_qos2 = 0x02;
inline constexpr uint8_t disconnect_with_will = 0x04;
inline constexpr uint8_t no_matching_subscribers = 0x10;
inline constexpr uint8_t no_subscription_existed = 0x11;
inline constexpr uint8_t unspecified_error = 0x80;
inline constexpr uint8_t malformed_packet = 0x81;
inline constexpr uint8_t protocol_error = 0x82;
inline constexpr uint8_t implementation_specific = 0x83;
inline constexpr uint8_t unsupported_protocol_version = 0x84;
inline constexpr uint8_t client_identifier_not_valid = 0x85;
inline constexpr uint8_t bad_username_or_password = 0x86;
inline constexpr uint8_t not_authorized = 0x87;
inline constexpr uint8_t server_unavailable = 0x88;
inline constexpr uint8_t server_busy = 0x89;
inline constexpr uint8_t server_shutting_down = 0x8B;
inline constexpr uint8_t bad_authentication_method = 0x8C;
inline constexpr uint8_t keep_alive_timeout = 0x8D;
inline constexpr uint8_t session_taken_over = 0x8E;
inline constexpr uint8_t topic_filter_invalid = 0x8F;
inline constexpr uint8_t topic_name_invalid = 0x90;
inline constexpr uint8_t packet_identifier_in_use = 0x91;
inline constexpr uint8_t packet_identifier_not_found = 0x92;
inline constexpr uint8_t receive_maximum_exceeded = 0x93;
inline constexpr uint8_t topic_alias_invalid = 0x94;
inline constexpr uint8_t packet_too_large = 0x95;
inline constexpr uint8_t quota_exceeded = 0x97;
inline constexpr uint8_t administrative_action = 0x98;
inline constexpr uint8_t payload_format_invalid = 0x99;
inline constexpr uint8_t retain_not_supported = 0x9A;
inline constexpr uint8_t qos_not_supported = 0x9B;
inline constexpr uint8_t shared_subscriptions_not_supported = 0x9E;
inline constexpr uint8_t subscription_identifiers_not_supported = 0xA1;
inline constexpr uint8_t wildcard_subscriptions_not_supported = 0xA2;
}  // namespace reason

struct Will {
    std::string topic;
    std::string payload;
    uint8_t qos = 0;
    bool retain = false;
    Properties properties;  // v5 will properties
    bool operator==(const Will&) const = default;
};

struct Connect {
    uint8_t level = v311;
    std::string protocol_name = "MQTT";
    bool clean_start = true;
    uint16_t keep_alive = 0;
    std::string client_id;
    std::optional<Will> will;
    std::optional<std::string> username;
    std::optional<std::string> password;
    Properties properties;
    bool operator==(const Connect&) const = default;
};

struct Connack {
    bool session_present = false;
    uint8_t code = 0;  // v5 reason code, or v3.1.1 return code
    Properties properties;
    bool operator==(const Connack&) const = default;
};

struct Publish {
    bool dup = false;
    uint8_t qos = 0;
    bool retain = false;
    std::string topic;
    uint16_t packet_id = 0;
    Properties properties;
    std::string payload;
    bool operator==(const Publish&) const = default;
};

// PUBACK, PUBREC, PUBREL, PUBCOMP.
struct Ack {
    PacketType type = PacketType::puback;
    uint16_t packet_id = 0;
    uint8_t code = 0;
    Properties properties;
    bool operator==(const Ack&) const = default;
};

struct SubscriptionRequest {
    std::string filter;
    uint8_t qos = 0;
    bool no_local = false;
    bool retain_as_published = false;
    uint8_t retain_handling = 0;
    bool operator==(const SubscriptionRequest&) const = default;
};

struct Subscribe {
    uint16_t packet_id = 0;
    Properties properties;
    std::vector<SubscriptionRequest> subscriptions;
    bool operator==(const Subscribe&) const = default;
};

struct Suback {
    uint16_t packet_id = 0;
    Properties properties;
    std::vector<uint8_t> codes;
    bool operator==(const Suback&) const = default;
};

struct Unsubscribe {
    uint16_t packet_id = 0;
    Properties properties;
    std::vector<std::string> filters;
    bool operator==(const Unsubscribe&) const = default;
};

struct Unsuback {
    uint16_t packet_id = 0;
    Properties properties;
    std::vector<uint8_t> codes;  // v5 only
    bool operator==(const Unsuback&) const = default;
};

struct Disconnect {
    uint8_t code = 0;
    Properties properties;
    bool operator==(const Disconnect&) const = default;
};

struct Auth {
    uint8_t code = 0;
    Properties properties;
    bool operator==(const Auth&) const = default;
};

struct Packet {
    PacketType type = PacketType::pingreq;
    Connect connect;
    Connack connack;
    Publish publish;
    Ack ack;
    Subscribe subscribe;
    Suback suback;
    Unsubscribe unsubscribe;
    Unsuback unsuback;
    Disconnect disconnect;
    Auth auth;
};

// Same type and same content for that type.
bool same(const Packet& a, const Packet& b);

// The fixed header of a packet found at the start of a buffer.
struct FrameInfo {
    enum class Status { complete, need_more, error } status = Status::need_more;
    size_t header_size = 0;  // fixed header bytes
    size_t total_size = 0;   // fixed header + remaining length
    uint8_t reason = 0;      // on error
    std::string error;
};

// Looks for one packet at the start of `bytes`; refuses remaining lengths above `max_size`
// (reason packet_too_large) and malformed length encodings.
FrameInfo frame(std::string_view bytes, uint32_t max_size);

struct DecodeError {
    uint8_t reason = reason::malformed_packet;  // malformed_packet or protocol_error (v5 codes)
    std::string message;
};

// Decodes one complete packet (as `frame()` delimited it). `level` is the protocol level of the
// connection (the CONNECT itself is decoded with its own level). Returns nullopt and fills `err`.
std::optional<Packet> decode(std::string_view packet, uint8_t level, DecodeError& err);

// The same for a PUBLISH, into a Publish whose buffers are reused from packet to packet: the
// per-message path builds no Packet (every packet type's fields) and, once warm, allocates
// nothing.
struct PublishScratch {
    Publish publish;
    bool has_properties = false;  // the last one decoded carried some (reset before the next)
};
bool decode_publish(std::string_view packet, uint8_t level, PublishScratch& s, DecodeError& err);

// Encoders append to `out`.
void encode(const Packet& p, uint8_t level, std::string& out);
void encode_connack(const Connack& c, uint8_t level, std::string& out);
void encode_publish(const Publish& p, uint8_t level, std::string& out);
void encode_ack(const Ack& a, uint8_t level, std::string& out);
// An acknowledgement without properties (the common one): no Ack to build.
void encode_ack(PacketType type, uint16_t packet_id, uint8_t code, uint8_t level, std::string& out);
void encode_suback(const Suback& s, uint8_t level, std::string& out);
void encode_unsuback(const Unsuback& u, uint8_t level, std::string& out);
void encode_disconnect(const Disconnect& d, uint8_t level, std::string& out);
void encode_pingresp(std::string& out);

// Properties on their own (used to store a message's MQTT 5 properties compactly):
// with their variable-length prefix, or just the property bytes.
void encode_properties(const Properties& p, std::string& out);
void encode_property_bytes(const Properties& p, std::string& out);
// Decodes property bytes without their length prefix (as encode_property_bytes writes them).
bool decode_property_bytes(std::string_view bytes, Properties& out, std::string& err);

// Well-formed UTF-8 without U+0000 and surrogates (MQTT-1.5.4-1, -2).
bool valid_utf8(std::string_view s);

// Variable byte integer.
void put_varint(uint32_t v, std::string& out);
size_t varint_size(uint32_t v);

}  // namespace trestle::mqtt
