// WebSocket (RFC 6455, server side) over another transport, for MQTT over WebSocket over TLS:
// the TLS decorator (tls_transport.hpp) below, this one above, the MQTT connection on top. The
// first plaintext byte decides: 'G' is an HTTP upgrade, anything else passes through as plain
// MQTT (one port serves mqtts:// and wss://). Frames are bounded by `max_message`.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "net/transport.hpp"

namespace trestle::net {

struct WsSettings {
    std::string path;                       // the upgrade's request target
    std::vector<std::string> subprotocols;  // offered by the client: the first one matching
    size_t max_message = 268435460;         // a frame or message larger ends the connection
};

std::unique_ptr<Transport> ws_or_plain_server_transport(std::unique_ptr<Transport> inner,
                                                        WsSettings settings);

// The framing alone, for the fuzzer and tests: feeds client bytes (after the handshake) and
// returns the payload bytes delivered, or an error ("" when fine); `reply` gets what the server
// would send (pongs, close).
struct WsParse {
    std::string data, reply, error;
    bool closed = false;
};
WsParse ws_parse_frames(std::string_view bytes, size_t max_message);
// The handshake alone: the 101 response, or an error status line and body.
std::string ws_handshake_answer(std::string_view request, const WsSettings& settings, bool& ok);

}  // namespace trestle::net
