// Link routes (router.config.linkRoute): configured, and active while their route container is
// connected.
#include "app/entities/entities.hpp"

namespace trestle::app::entities {

Provider link_route(const View& view, Operations& ops) {
    Provider p;
    p.query = [&view] {
        std::vector<json::Object> rows;
        for (const auto& e : view.entities("router.config.linkRoute")) {
            json::Object r = entity_row(e);
            bool active = false;
            for (const auto& [id, c] : view.router().connections()) {
                const auto& i = c->info();
                if (i.role != "route-container") continue;
                active |= (e.has("connection") && i.connector == e.str("connection")) ||
                          (e.has("containerId") && i.container_id == e.str("containerId"));
            }
            r.emplace_back("operStatus", active ? "active" : "inactive");
            rows.push_back(std::move(r));
        }
        return rows;
    };
    runtime_entity(p, ops, "router.config.linkRoute");
    return p;
}

}  // namespace trestle::app::entities
