// Wires the adapters to the core from validated configuration and runs the event loop; the only
// place that knows every module.
#pragma once

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "amqp/connection.hpp"
#include "kafka/adapter.hpp"
#include "management/config.hpp"
#include "mqtt/server.hpp"
#include "net/event_loop.hpp"
#include "trestle/core/router.hpp"

namespace trestle::app {

class Server {
public:
    // Validates the configuration beyond the schema; throws management::ConfigError.
    explicit Server(const std::vector<management::Entity>& config);
    ~Server();

    // Binds listeners and starts connectors; returns an error description or empty.
    std::string start();
    // Runs until SIGTERM/SIGINT (or stop()); returns the process exit code.
    int run();
    void stop();

    core::Router& router() { return *router_; }
    kafka::Adapter* kafka() { return kafka_.get(); }

private:
    struct ListenerConfig {
        std::string name, host;
        uint16_t port;
        amqp::AmqpSettings settings;
    };
    struct MqttListenerConfig {
        std::string host;
        uint16_t port;
        mqtt::ListenerSettings settings;
    };
    struct ConnectorConfig {
        std::string host;
        uint16_t port;
        uint32_t max_delay_ms;
        amqp::AmqpSettings settings;
    };

    void accept(const ListenerConfig& lc, boost::asio::ip::tcp::socket s);
    void housekeeping();
    void finish_shutdown();

    net::EventLoop loop_;
    std::unique_ptr<core::Router> router_;
    std::vector<ListenerConfig> listener_configs_;
    std::vector<ConnectorConfig> connector_configs_;
    std::vector<MqttListenerConfig> mqtt_configs_;
    core::MemorySessionStore session_store_;
    core::MemoryWillStore will_store_;
    std::unique_ptr<mqtt::SessionManager> mqtt_;
    std::optional<kafka::Settings> kafka_settings_;
    std::unique_ptr<kafka::Adapter> kafka_;
    std::vector<std::shared_ptr<net::TcpListener>> listeners_;
    std::vector<std::shared_ptr<amqp::AmqpConnector>> connectors_;
    std::unordered_map<amqp::AmqpConnection*, std::shared_ptr<amqp::AmqpConnection>> connections_;
    boost::asio::signal_set signals_;
    boost::asio::steady_timer ticker_;
    boost::asio::steady_timer shutdown_deadline_;
    bool stopping_ = false;
};

}  // namespace trestle::app
