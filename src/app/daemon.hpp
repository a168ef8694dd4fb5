// Wires the adapters to the core from validated configuration and runs the event loop; the only
// place that knows every module.
#pragma once

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "amqp/connection.hpp"
#include "app/log_ring.hpp"
#include "app/operations.hpp"
#include "app/view.hpp"
#include "http/endpoint.hpp"
#include "kafka/adapter.hpp"
#include "management/agent.hpp"
#include "management/config.hpp"
#include "mqtt/session_manager.hpp"
#include "net/event_loop.hpp"
#include "security/password_file.hpp"
#include "security/tls.hpp"
#include "trestle/core/router.hpp"

namespace trestle::app {

// Implements the read-only View that management and /metrics read, and the Operations that
// management may apply (daemon_view.cpp, operations.cpp).
class Daemon final : private View, private Operations {
  public:
    // Validates the configuration beyond the schema; throws management::ConfigError.
    // `log` (optional): the log ring GET-LOG reads.
    explicit Daemon(const std::vector<management::Entity>& config,
                    std::shared_ptr<LogRing> log = nullptr);
    ~Daemon();

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
        management::Entity entity;
        std::shared_ptr<net::TcpListener> listener;
        std::string error;  // why it is not listening
    };
    struct MqttListenerConfig {
        std::string host;
        uint16_t port;
        mqtt::ListenerSettings settings;
        management::Entity entity;
        std::shared_ptr<net::TcpListener> listener;
        std::string error;
    };
    struct HttpListenerConfig {
        std::string host;
        uint16_t port;
        http::Settings settings;
        size_t metrics_max_addresses = 1000;
        std::shared_ptr<security::TlsProfile> tls;
        std::shared_ptr<security::PasswordFile> users;  // authenticatePeer: basic auth
        management::Entity entity;
        std::shared_ptr<net::TcpListener> listener;
        std::unique_ptr<http::Endpoint> endpoint;
        std::string error;
    };
    struct ConnectorConfig {
        std::string host;
        uint16_t port;
        uint32_t max_delay_ms;
        amqp::AmqpSettings settings;
        management::Entity entity;
        std::shared_ptr<amqp::AmqpConnector> connector;
    };

    // Entity -> running object; throw management::ConfigError (CREATE turns it into 400).
    amqp::AmqpSettings amqp_settings(const management::Entity& e, bool listener);
    void add_security(const management::Entity& e);  // sslProfile, userStore
    void add_policy(const management::Entity& e);
    // A vhost entity into the core's policy (replacing one of the same hostname).
    void add_vhost(const management::Entity& e);
    // The sslProfile an entity names (nullptr if none); ConfigError if it is not configured.
    std::shared_ptr<security::TlsProfile> tls_profile(const management::Entity& e);
    // The userStore an entity names, or the only one; nullptr if none.
    std::shared_ptr<security::PasswordFile> user_store(const management::Entity& e);
    std::unique_ptr<ListenerConfig> make_listener(const management::Entity& e);
    std::unique_ptr<MqttListenerConfig> make_mqtt_listener(const management::Entity& e);
    std::unique_ptr<ConnectorConfig> make_connector(const management::Entity& e);
    std::unique_ptr<HttpListenerConfig> make_http_listener(const management::Entity& e);
    std::string start_http_listener(HttpListenerConfig& hc);
    // What the HTTP endpoints answer (http_views.cpp).
    http::Response http_request(const http::Request& req, const HttpListenerConfig& hc);
    bool basic_auth_ok(const http::Request& req, const HttpListenerConfig& hc);
    uint64_t http_auth_failures_ = 0;
    uint64_t http_auth_failures() const override { return http_auth_failures_; }
    size_t connections_on(const ListenerConfig& lc) const;

    // View (daemon_view.cpp)
    const core::Router& router() const override { return *router_; }
    const mqtt::SessionManager& mqtt() const override { return *mqtt_; }
    const kafka::Adapter* kafka() const override { return kafka_.get(); }
    uint64_t uptime_seconds() const override;
    const management::Entity& router_entity() const override { return router_entities_.front(); }
    const std::vector<management::Entity>& entities(std::string_view type) const override;
    std::vector<ListenerState> listeners(std::string_view type) const override;
    std::vector<ConnectorState> connectors() const override;
    std::vector<std::string> not_ready() const override;

    // Operations (operations.cpp)
    Status create(std::string_view type, const management::Entity& e, json::Object& row) override;
    Status remove(std::string_view type, const std::string& name) override;
    Status update(std::string_view type, const std::string& name,
                  const json::Object& changes) override;
    Status close_connection(const std::string& identity) override;
    Status end_mqtt_session(const std::string& client_id) override;
    void add_address(const management::Entity& e);
    static kafka::RouteSettings kafka_route(const management::Entity& e);
    void add_link_route(const management::Entity& e);
    std::string start_listener(ListenerConfig& lc);
    std::string start_mqtt_listener(MqttListenerConfig& mc);
    void start_connector(ConnectorConfig& cc);
    void register_management();

    void accept(const ListenerConfig& lc, boost::asio::ip::tcp::socket s);
    void housekeeping();
    void finish_shutdown();

    net::EventLoop loop_;
    std::unique_ptr<core::Router> router_;
    std::vector<std::unique_ptr<ListenerConfig>> listener_configs_;
    std::vector<std::unique_ptr<ConnectorConfig>> connector_configs_;
    std::vector<std::unique_ptr<MqttListenerConfig>> mqtt_configs_;
    std::vector<std::unique_ptr<HttpListenerConfig>> http_configs_;
    // Deleted MQTT listeners: their settings stay referenced by the connections they accepted.
    std::vector<std::unique_ptr<MqttListenerConfig>> retired_mqtt_;
    std::vector<management::Entity> router_entities_, address_entities_, link_route_entities_,
        kafka_entities_, kafka_route_entities_, ssl_profile_entities_, user_store_entities_,
        policy_entities_, vhost_entities_;
    std::map<std::string, std::shared_ptr<security::TlsProfile>, std::less<>> tls_profiles_;
    std::map<std::string, std::shared_ptr<security::PasswordFile>, std::less<>> user_stores_;
    std::shared_ptr<LogRing> log_;
    management::Agent agent_;
    std::unique_ptr<management::AgentEndpoint> agent_endpoint_;
    uint64_t started_ms_ = 0;
    bool started_ = false;
    core::MemorySessionStore session_store_;
    std::unique_ptr<mqtt::SessionManager> mqtt_;
    std::optional<kafka::Settings> kafka_settings_;
    std::unique_ptr<kafka::Adapter> kafka_;
    std::unordered_map<amqp::AmqpConnection*, std::shared_ptr<amqp::AmqpConnection>> connections_;
    boost::asio::signal_set signals_;
    boost::asio::steady_timer ticker_;
    boost::asio::steady_timer shutdown_deadline_;
    bool stopping_ = false;
};

}  // namespace trestle::app
