// An MQTT application message as the core carries it (MessageFormat::mqtt), built once from
// the PUBLISH and sent to every MQTT subscriber without re-encoding its properties:
//   u16 topic length | topic | varint properties length | MQTT 5 properties | payload
// The properties kept are those of the message itself (no topic alias, subscription
// identifiers or message expiry: those are per delivery; expiry lives in the core Message).
#pragma once

#include <string_view>

#include "trestle/core/message.hpp"

namespace trestle::mqtt {

struct MessageView {
    std::string_view topic;
    std::string_view properties;  // encoded properties without their length prefix
    std::string_view payload;
};

core::MessageRef make_message(std::string_view topic, std::string_view properties,
                              std::string_view payload);
// False if `m` is not a well-formed MQTT-format message.
bool view_message(const core::Message& m, MessageView& out);

}  // namespace trestle::mqtt
