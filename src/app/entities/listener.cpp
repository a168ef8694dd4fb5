// Listeners: listener (AMQP), mqttListener and httpListener, as configured and as they run.
#include "app/entities/entities.hpp"

namespace trestle::app::entities {

Provider listener(const View& view, Operations& ops, std::string_view type) {
    Provider p;
    std::string t(type);
    p.query = [&view, t] {
        std::vector<json::Object> rows;
        for (const auto& l : view.listeners(t)) {
            json::Object r = entity_row(*l.entity);
            r.emplace_back("operStatus", l.up ? "up" : "down");
            r.emplace_back("lastError", l.error.empty() ? json::Value() : json::Value(l.error));
            r.emplace_back("boundPort",
                           l.up ? json::Value(static_cast<int64_t>(l.port)) : json::Value());
            r.emplace_back("connectionCount", static_cast<int64_t>(l.connections));
            rows.push_back(std::move(r));
        }
        return rows;
    };
    // HTTP listeners are configured only: probes should not come and go at runtime.
    if (t != "httpListener") {
        runtime_entity(p, ops, t);
    }
    return p;
}

}  // namespace trestle::app::entities
