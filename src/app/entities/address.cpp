// Addresses (router.address): every address in use with its distribution and counters
// (qdstat -a).
#include "app/entities/entities.hpp"

namespace trestle::app::entities {

Provider address(const View& view) {
    Provider p;
    p.query = [&view] {
        std::vector<json::Object> rows;
        for (const auto& [name, a] : view.router().addresses()) {
            const auto& c = a->counters();
            std::string key = address_key(name);
            json::Object r{{"identity", key},
                           {"name", key},
                           {"key", key},
                           {"distribution", std::string(core::to_string(a->distribution()))},
                           {"inProcess", name == "$management"},
                           {"subscriberCount",
                            static_cast<int64_t>(a->consumers().size() + a->filter_matches())},
                           {"remoteCount", 0},
                           {"containerCount", 0},
                           {"remoteHostRouters", 0},
                           {"deliveriesIngress", c.deliveries_ingress},
                           {"deliveriesEgress", c.deliveries_egress},
                           {"deliveriesTransit", 0},
                           {"deliveriesToContainer", c.deliveries_to_container},
                           {"deliveriesFromContainer", c.deliveries_from_container},
                           {"deliveriesRedirectedToFallback", 0},
                           {"priority", -1},
                           {"waypoint", a->waypoint() != nullptr}};
            rows.push_back(std::move(r));
        }
        return rows;
    };
    return p;
}

}  // namespace trestle::app::entities
