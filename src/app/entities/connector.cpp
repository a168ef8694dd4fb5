// Connectors: outgoing AMQP connections as configured, with their connection status.
#include "app/entities/entities.hpp"

namespace trestle::app::entities {

Provider connector(const View& view, Operations& ops) {
    Provider p;
    p.query = [&view] {
        std::vector<json::Object> rows;
        for (const auto& cc : view.connectors()) {
            json::Object r = entity_row(*cc.entity);
            const std::string& st = cc.status;
            r.emplace_back("operStatus", st == "SUCCESS" ? "up" : "down");
            r.emplace_back("lastError",
                           cc.message.empty() ? json::Value() : json::Value(cc.message));
            r.emplace_back("connectionStatus", st);
            rows.push_back(std::move(r));
        }
        return rows;
    };
    runtime_entity(p, ops, "connector");
    return p;
}

}  // namespace trestle::app::entities
