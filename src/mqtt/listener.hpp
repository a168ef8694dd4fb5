// An MQTT listener's settings, and how its accepted sockets become transports (plain TCP, or
// WebSocket when the first bytes are an HTTP upgrade to its path).
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "net/event_loop.hpp"
#include "net/transport.hpp"
#include "security/tls.hpp"
#include "trestle/core/users.hpp"

namespace trestle::mqtt {

using net::Transport;

struct ListenerSettings {
    std::string name;
    bool allow_v311 = true;
    bool allow_v5 = true;
    uint32_t max_packet_size = 1 << 20;
    uint32_t max_connections = 0;              // 0 = no limit
    uint16_t max_keep_alive = 0;               // 0 = whatever the client asks
    uint16_t receive_maximum = 1000;           // QoS 1/2 publishes a client may have unacknowledged
    uint16_t topic_alias_maximum = 100;        // aliases a client may define
    uint32_t max_session_queue = 1000;         // messages queued per session
    uint32_t max_session_expiry = 0xFFFFFFFF;  // cap; also the expiry of 3.1.1 persistent sessions
    size_t max_buffered_bytes = 1 << 20;       // output a connection may have unsent
    uint32_t connect_timeout_ms = 10000;
    std::string websocket_path;  // "" = no MQTT over WebSocket on this listener
    // Security (docs/security.md).
    std::shared_ptr<security::TlsProfile> tls;  // sslProfile: every connection is TLS
    bool require_certificate = false;           // clients present a certificate the CA signed
    bool use_identity_as_username = false;      // ... and it names the user
    std::shared_ptr<core::UserStore> users;     // checks CONNECT's user name and password
    bool allow_anonymous = true;                // clients without credentials
    std::string policy_vhost;                   // the policy vhost of its connections
    uint32_t auth_failure_delay_ms = 1000;      // a refused login's CONNACK waits this long
};

// Sniffs the first bytes of an accepted socket: an HTTP upgrade to `settings.websocket_path`
// becomes a WebSocket transport, anything else plain MQTT over TCP (net/epoll_transport.hpp).
void accept_mqtt_or_websocket(net::Poller& poller, boost::asio::ip::tcp::socket s,
                              const ListenerSettings& settings,
                              std::function<void(std::unique_ptr<Transport>)> ready);

}  // namespace trestle::mqtt
