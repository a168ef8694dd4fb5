// The kafka entity: the cluster, its health (readiness) and the retained messages held.
#include "app/entities/entities.hpp"

namespace trestle::app::entities {

Provider kafka(const View& view) {
    Provider p;
    p.query = [&view] {
        std::vector<json::Object> rows;
        for (const auto& e : view.entities("kafka")) {
            json::Object r = entity_row(e);
            r.emplace_back("bootstrap", view.kafka()
                                            ? json::Value(view.kafka()->bootstrap_servers())
                                            : json::Value());
            kafka::Health h = view.kafka() ? view.kafka()->health() : kafka::Health{};
            r.emplace_back("operStatus", h.up ? "up" : "down");
            r.emplace_back("lastError", h.up ? json::Value() : json::Value(h.reason));
            r.emplace_back("retainedCount", static_cast<int64_t>(view.router().retained().size()));
            rows.push_back(std::move(r));
        }
        return rows;
    };
    return p;
}

}  // namespace trestle::app::entities
