// Address rules (router.config.address): the configured distributions and waypoints.
#include "app/entities/entities.hpp"

namespace trestle::app::entities {

Provider address_rule(const View& view, Operations& ops) {
    Provider p;
    p.query = [&view] {
        std::vector<json::Object> rows;
        for (const auto& e : view.entities("router.config.address")) rows.push_back(entity_row(e));
        return rows;
    };
    runtime_entity(p, ops, "router.config.address");
    return p;
}

}  // namespace trestle::app::entities
