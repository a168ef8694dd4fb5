// MQTT sessions (mqttSession): connected or kept for offline clients, their subscriptions and
// queues; DELETE ends one.
#include "app/entities/entities.hpp"

namespace trestle::app::entities {

Provider mqtt_session(const View& view, Operations& ops) {
    Provider p;
    p.query = [&view] {
        std::vector<json::Object> rows;
        for (const auto& [id, s] : view.mqtt().sessions()) {
            json::Array subs;
            for (const auto& [f, sub] : s->subscriptions())
                subs.emplace_back(json::Array{f, static_cast<int64_t>(sub.qos)});
            const mqtt::Connection* c = s->connection();
            rows.push_back(
                json::Object{{"identity", "mqttSession/" + s->client_id()},
                             {"name", "mqttSession/" + s->client_id()},
                             {"clientId", s->client_id()},
                             {"connected", c != nullptr},
                             {"protocolVersion", s->level() == 5 ? "5" : "3.1.1"},
                             {"host", c ? json::Value(c->remote()) : json::Value()},
                             {"expiryIntervalSeconds", static_cast<int64_t>(s->expiry_interval())},
                             {"subscriptions", std::move(subs)},
                             {"queued", static_cast<int64_t>(s->queued())},
                             {"inflight", static_cast<int64_t>(s->inflight())},
                             {"dropped", s->dropped()}});
        }
        return rows;
    };
    // DELETE ends the session now (its connection, if any, is closed).
    p.remove = [&ops](const json::Object& row) {
        return ops.end_mqtt_session(text_of(row, "clientId"));
    };
    return p;
}

}  // namespace trestle::app::entities
