// MQTT 5 properties: their identifiers, the set Trestle understands, and their codec (which
// properties each packet may carry, MQTT 5.0 section 2.2.2.2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace trestle::mqtt {

// MQTT 5 property identifiers.
namespace prop {
inline constexpr uint8_t payload_format_indicator = 0x01;
inline constexpr uint8_t message_expiry_interval = 0x02;
inline constexpr uint8_t content_type = 0x03;
inline constexpr uint8_t response_topic = 0x08;
inline constexpr uint8_t correlation_data = 0x09;
inline constexpr uint8_t subscription_identifier = 0x0B;
inline constexpr uint8_t session_expiry_interval = 0x11;
inline constexpr uint8_t assigned_client_identifier = 0x12;
inline constexpr uint8_t server_keep_alive = 0x13;
inline constexpr uint8_t authentication_method = 0x15;
inline constexpr uint8_t authentication_data = 0x16;
inline constexpr uint8_t request_problem_information = 0x17;
inline constexpr uint8_t will_delay_interval = 0x18;
inline constexpr uint8_t request_response_information = 0x19;
inline constexpr uint8_t response_information = 0x1A;
inline constexpr uint8_t server_reference = 0x1C;
inline constexpr uint8_t reason_string = 0x1F;
inline constexpr uint8_t receive_maximum = 0x21;
inline constexpr uint8_t topic_alias_maximum = 0x22;
inline constexpr uint8_t topic_alias = 0x23;
inline constexpr uint8_t maximum_qos = 0x24;
inline constexpr uint8_t retain_available = 0x25;
inline constexpr uint8_t user_property = 0x26;
inline constexpr uint8_t maximum_packet_size = 0x27;
inline constexpr uint8_t wildcard_subscription_available = 0x28;
inline constexpr uint8_t subscription_identifier_available = 0x29;
inline constexpr uint8_t shared_subscription_available = 0x2A;
}  // namespace prop

using UserProperties = std::vector<std::pair<std::string, std::string>>;

// The MQTT 5 properties Trestle understands, across all packet types. Absent = nullopt.
struct Properties {
    std::optional<uint8_t> payload_format_indicator;
    std::optional<uint32_t> message_expiry_interval;
    std::optional<std::string> content_type;
    std::optional<std::string> response_topic;
    std::optional<std::string> correlation_data;
    std::vector<uint32_t> subscription_identifiers;
    std::optional<uint32_t> session_expiry_interval;
    std::optional<std::string> assigned_client_identifier;
    std::optional<uint16_t> server_keep_alive;
    std::optional<std::string> authentication_method;
    std::optional<std::string> authentication_data;
    std::optional<uint8_t> request_problem_information;
    std::optional<uint32_t> will_delay_interval;
    std::optional<uint8_t> request_response_information;
    std::optional<std::string> response_information;
    std::optional<std::string> server_reference;
    std::optional<std::string> reason_string;
    std::optional<uint16_t> receive_maximum;
    std::optional<uint16_t> topic_alias_maximum;
    std::optional<uint16_t> topic_alias;
    std::optional<uint8_t> maximum_qos;
    std::optional<uint8_t> retain_available;
    UserProperties user_properties;
    std::optional<uint32_t> maximum_packet_size;
    std::optional<uint8_t> wildcard_subscription_available;
    std::optional<uint8_t> subscription_identifier_available;
    std::optional<uint8_t> shared_subscription_available;

    bool operator==(const Properties&) const = default;
};

// The packets whose properties are read (each allows its own set; `any`: stored message
// properties).
enum class PropertiesOf : uint8_t {
    connect,
    will,
    connack,
    publish,
    ack,
    subscribe,
    unsubscribe,
    disconnect,
    auth,
    any
};

namespace wire {
class In;
}
// Reads a property length and the properties after it; a property the packet may not carry is a
// protocol error (reported through `in`).
bool read_properties(wire::In& in, PropertiesOf packet, Properties& out);

// The property length and the properties.
void encode_properties(const Properties& p, std::string& out);
// The properties alone (no length): how a message's MQTT 5 properties are stored.
void encode_property_bytes(const Properties& p, std::string& out);
// Stored property bytes back to Properties; false (with `err`) when they are not valid.
bool decode_property_bytes(std::string_view bytes, Properties& out, std::string& err);

}  // namespace trestle::mqtt
