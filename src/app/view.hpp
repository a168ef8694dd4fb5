// The read-only view of a running router that the management entities (app/entities/) and
// /metrics (app/metrics.cpp) read: the core, the adapters' state and counters, the configured
// entities. Implemented by the Daemon; nothing here changes anything (changes go through
// app/operations.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kafka/adapter.hpp"
#include "management/config.hpp"
#include "mqtt/session_manager.hpp"
#include "trestle/core/router.hpp"

namespace trestle::app {

// A configured listener as it runs.
struct ListenerState {
    const management::Entity* entity = nullptr;
    std::string name;
    std::string protocol;  // amqp, mqtt, http
    bool up = false;       // bound and accepting
    std::string error;     // why not
    uint16_t port = 0;     // the bound port (0: none)
    size_t connections = 0;
};

// A configured connector as it runs.
struct ConnectorState {
    const management::Entity* entity = nullptr;
    std::string status;   // SUCCESS, CONNECTING, FAILED (qdrouterd's connectionStatus)
    std::string message;  // its last error
};

class View {
  public:
    virtual const core::Router& router() const = 0;
    virtual const mqtt::SessionManager& mqtt() const = 0;
    virtual const kafka::Adapter* kafka() const = 0;  // null: none configured, or not started
    virtual uint64_t uptime_seconds() const = 0;
    // The router entity as configured.
    virtual const management::Entity& router_entity() const = 0;
    // Configured entities of a type without a running object of their own: router.config.address,
    // router.config.linkRoute, kafka, kafkaRoute.
    virtual const std::vector<management::Entity>& entities(std::string_view type) const = 0;
    // listener, mqttListener or httpListener.
    virtual std::vector<ListenerState> listeners(std::string_view type) const = 0;
    virtual std::vector<ConnectorState> connectors() const = 0;
    // HTTP basic auth refusals (httpListener authenticatePeer).
    virtual uint64_t http_auth_failures() const = 0;
    // Why the router is not ready (empty: ready): /readyz.
    virtual std::vector<std::string> not_ready() const = 0;

    // Counts management and /metrics both report.
    size_t amqp_connection_count() const;
    size_t blocked_links() const;

  protected:
    ~View() = default;
};

}  // namespace trestle::app
