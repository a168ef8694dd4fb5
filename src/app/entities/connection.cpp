// Connections: AMQP ones from the core, MQTT ones from the MQTT session manager (a client that
// never published has no core connection).
#include "app/entities/entities.hpp"

namespace trestle::app::entities {

Provider connection(const View& view, Operations& ops) {
    Provider p;
    p.query = [&view] {
        std::vector<json::Object> rows;
        uint64_t now = view.router().now_ms();
        for (const auto& [id, c] : view.router().connections()) {
            const auto& i = c->info();
            if (i.protocol != "amqp") continue;
            json::Object r{
                {"identity", std::to_string(id)},
                {"name", "connection/" + i.host},
                {"host", i.host},
                {"container", i.container_id},
                {"role", i.role},
                {"dir", i.inbound ? "in" : "out"},
                {"protocol", "amqp"},
                {"isEncrypted", i.encrypted},
                {"sslProto", i.ssl_protocol.empty() ? json::Value() : json::Value(i.ssl_protocol)},
                {"sslCipher", i.ssl_cipher.empty() ? json::Value() : json::Value(i.ssl_cipher)},
                {"sslSsf", static_cast<int64_t>(i.ssl_ssf)},
                {"isAuthenticated", i.authenticated},
                {"sasl", i.sasl_mechanism.empty() ? json::Value() : json::Value(i.sasl_mechanism)},
                {"user", i.user.empty() ? json::Value("anonymous") : json::Value(i.user)},
                {"listener", i.listener.empty() ? json::Value() : json::Value(i.listener)},
                {"uptimeSeconds", static_cast<int64_t>((now - c->opened_ms()) / 1000)},
                {"lastDlvSeconds", c->last_delivery_ms ? json::Value(static_cast<int64_t>(
                                                             (now - c->last_delivery_ms) / 1000))
                                                       : json::Value()},
                {"deliveriesIn", c->deliveries_in},
                {"deliveriesOut", c->deliveries_out},
                {"adminStatus", "enabled"},
                {"operStatus", "up"}};
            rows.push_back(std::move(r));
        }
        view.mqtt().visit_connections([&](const mqtt::Connection& m) {
            uint64_t core_id = m.core_connection_id();
            const core::Connection* cc = nullptr;
            if (core_id) {
                auto it = view.router().connections().find(core_id);
                if (it != view.router().connections().end()) cc = it->second.get();
            }
            std::string id = core_id ? std::to_string(core_id) : "mqtt-" + std::to_string(m.id());
            json::Object r{
                {"identity", id},
                {"name", "connection/" + m.remote()},
                {"host", m.remote()},
                {"container", m.session() ? json::Value(m.session()->client_id()) : json::Value()},
                {"role", "normal"},
                {"dir", "in"},
                {"protocol", m.websocket() ? "mqtt-ws" : "mqtt"},
                {"isEncrypted", cc && cc->info().encrypted},
                {"sslProto",
                 cc && cc->info().encrypted ? json::Value(cc->info().ssl_protocol) : json::Value()},
                {"sslCipher",
                 cc && cc->info().encrypted ? json::Value(cc->info().ssl_cipher) : json::Value()},
                {"sslSsf", cc ? static_cast<int64_t>(cc->info().ssl_ssf) : 0},
                {"isAuthenticated", cc && cc->info().authenticated},
                {"user", cc && !cc->info().user.empty() ? json::Value(cc->info().user)
                                                        : json::Value("anonymous")},
                {"listener", m.settings().name},
                {"uptimeSeconds", json::Value()},
                {"deliveriesIn", cc ? json::Value(cc->deliveries_in) : json::Value(0)},
                {"adminStatus", "enabled"},
                {"operStatus", m.closed() ? "closing" : "up"}};
            if (cc)
                r.emplace_back("uptimeSeconds",
                               static_cast<int64_t>((now - cc->opened_ms()) / 1000));
            rows.push_back(std::move(r));
        });
        return rows;
    };
    // DELETE-like UPDATE: adminStatus "deleted" closes the connection (qdmanage's way).
    p.update = [&ops](const json::Object& row, const json::Object& changes) -> management::Status {
        for (const auto& [k, v] : changes)
            if (k == "adminStatus" && v.as_string() == "deleted")
                return ops.close_connection(text_of(row, "identity"));
        return {};
    };
    return p;
}

}  // namespace trestle::app::entities
