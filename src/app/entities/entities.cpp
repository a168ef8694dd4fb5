#include "app/entities/entities.hpp"

#include "security/secret.hpp"

namespace trestle::app::entities {

void register_entities(management::Agent& agent, const View& view, Operations& ops) {
    agent.set_provider("router", router(view));
    agent.set_provider("connection", connection(view, ops));
    agent.set_provider("router.link", link(view));
    agent.set_provider("router.address", address(view));
    agent.set_provider("listener", listener(view, ops, "listener"));
    agent.set_provider("mqttListener", listener(view, ops, "mqttListener"));
    agent.set_provider("httpListener", listener(view, ops, "httpListener"));
    agent.set_provider("connector", connector(view, ops));
    agent.set_provider("router.config.address", address_rule(view, ops));
    agent.set_provider("router.config.linkRoute", link_route(view, ops));
    agent.set_provider("kafka", kafka(view));
    agent.set_provider("kafkaRoute", kafka_route(view, ops));
    agent.set_provider("log", log());
    agent.set_provider("allocator", allocator(view));
    agent.set_provider("mqttSession", mqtt_session(view, ops));
    agent.set_provider("retained", retained(view));
    agent.set_provider("sslProfile", configured(view, "sslProfile"));
    agent.set_provider("userStore", configured(view, "userStore"));
    agent.set_provider("policy", policy(view));
    agent.set_provider("vhost", vhost(view, ops));
}

json::Object entity_row(const management::Entity& e) {
    json::Object row;
    for (const auto& [k, v] : e.attributes) {
        const auto* a = e.type->attribute(k);
        row.emplace_back(k, a && a->secret ? json::Value(security::masked) : v);
    }
    std::string name = e.str("name");
    row.emplace_back("identity", e.type->short_name + "/" + name);
    return row;
}

std::string text_of(const json::Object& row, std::string_view key) {
    for (const auto& [k, v] : row)
        if (k == key && v.is_string()) return v.as_string();
    return {};
}

// qdrouterd's address key: M<phase><address> for mobile addresses, L for in-process ones.
std::string address_key(const std::string& name) {
    return (name == "$management" ? "L" : "M0") + name;
}

void runtime_entity(Provider& p, Operations& ops, std::string_view type) {
    p.create = [&ops, t = std::string(type)](const management::Entity& e, json::Object& row) {
        return ops.create(t, e, row);
    };
    p.remove = [&ops, t = std::string(type)](const json::Object& row) {
        return ops.remove(t, text_of(row, "name"));
    };
}

}  // namespace trestle::app::entities
