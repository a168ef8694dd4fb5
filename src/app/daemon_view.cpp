// The Daemon as the read-only View of the router (app/view.hpp): what management entities and
// /metrics read about listeners, connectors and configured entities.
#include "app/daemon.hpp"

namespace trestle::app {

size_t View::amqp_connection_count() const {
    size_t n = 0;
    for (const auto& [id, c] : router().connections()) n += c->info().protocol == "amqp";
    return n;
}

size_t View::blocked_links() const {
    size_t n = 0;
    for (const auto& [id, l] : router().links()) n += l->blocked();
    return n;
}

uint64_t Daemon::uptime_seconds() const {
    return (net::monotonic_ms() - started_ms_) / 1000;
}

size_t Daemon::connections_on(const ListenerConfig& lc) const {
    size_t n = 0;
    for (const auto& [p, c] : connections_) n += c->settings().name == lc.name;
    return n;
}

const std::vector<management::Entity>& Daemon::entities(std::string_view type) const {
    static const std::vector<management::Entity> none;
    if (type == "router.config.address") return address_entities_;
    if (type == "router.config.linkRoute") return link_route_entities_;
    if (type == "kafka") return kafka_entities_;
    if (type == "kafkaRoute") return kafka_route_entities_;
    if (type == "sslProfile") return ssl_profile_entities_;
    if (type == "userStore") return user_store_entities_;
    if (type == "policy") return policy_entities_;
    if (type == "vhost") return vhost_entities_;
    return none;
}

std::vector<ListenerState> Daemon::listeners(std::string_view type) const {
    std::vector<ListenerState> out;
    auto add = [&](const management::Entity& e, std::string name, const char* protocol,
                   const net::TcpListener* l, const std::string& error, size_t connections) {
        out.push_back({&e, std::move(name), protocol, l != nullptr, error,
                       l ? l->port() : uint16_t(0), connections});
    };
    if (type == "listener")
        for (const auto& lc : listener_configs_)
            add(lc->entity, lc->name, "amqp", lc->listener.get(), lc->error, connections_on(*lc));
    if (type == "mqttListener")
        for (const auto& mc : mqtt_configs_)
            add(mc->entity, mc->settings.name, "mqtt", mc->listener.get(), mc->error,
                mqtt_->connections_on(mc->settings.name));
    if (type == "httpListener")
        for (const auto& hc : http_configs_)
            add(hc->entity, hc->settings.name, "http", hc->listener.get(), hc->error,
                hc->endpoint ? hc->endpoint->connections() : 0);
    return out;
}

std::vector<ConnectorState> Daemon::connectors() const {
    std::vector<ConnectorState> out;
    for (const auto& cc : connector_configs_)
        out.push_back({&cc->entity, cc->connector ? cc->connector->status() : std::string(),
                       cc->connector ? cc->connector->message() : std::string()});
    return out;
}

std::vector<std::string> Daemon::not_ready() const {
    std::vector<std::string> why;
    if (!started_) why.push_back("starting");
    if (stopping_) why.push_back("shutting down");
    for (const auto& l : listener_configs_)
        if (!l->listener) why.push_back("listener '" + l->name + "' is down: " + l->error);
    for (const auto& m : mqtt_configs_)
        if (!m->listener)
            why.push_back("mqttListener '" + m->settings.name + "' is down: " + m->error);
    if (kafka_settings_) {
        if (!kafka_) {
            why.push_back("kafka '" + kafka_settings_->name + "' is not started");
        } else if (kafka::Health h = kafka_->health(); !h.up) {
            why.push_back(h.reason);
        }
    }
    return why;
}

}  // namespace trestle::app
