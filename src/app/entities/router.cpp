// The router entity: identity, version, uptime and qdrouterd's router-wide counters.
#include "app/entities/entities.hpp"
#include "app/process_stats.hpp"
#include "trestle/version.hpp"

namespace trestle::app::entities {

Provider router(const View& view) {
    Provider p;
    p.query = [&view] {
        json::Object row = entity_row(view.router_entity());
        for (auto& [k, v] : row)
            if (k == "identity") v = json::Value("router/" + view.router().settings().id);
        row.emplace_back("name", "router/" + view.router().settings().id);
        const auto& c = view.router().counters();
        size_t links = view.router().links().size();
        size_t blocked = view.blocked_links();
        size_t conns = view.mqtt().connection_count() + view.amqp_connection_count();
        json::Object ops{
            {"area", "0"},
            {"version", trestle::version},
            {"uptimeSeconds", static_cast<int64_t>(view.uptime_seconds())},
            {"addrCount", static_cast<int64_t>(view.router().addresses().size())},
            {"linkCount", static_cast<int64_t>(links)},
            {"nodeCount", 0},
            {"connectionCount", static_cast<int64_t>(conns)},
            {"linkRouteCount", static_cast<int64_t>(view.router().link_routes().size())},
            {"autoLinkCount", 0},
            {"memoryUsage", resident_bytes()},
            {"presettledDeliveries", c.presettled},
            {"droppedPresettledDeliveries", c.dropped_presettled},
            {"acceptedDeliveries", c.accepted},
            {"rejectedDeliveries", c.rejected},
            {"releasedDeliveries", c.released},
            {"modifiedDeliveries", c.modified},
            {"deliveriesDelayed1Sec", c.delayed_1sec},
            {"deliveriesDelayed10Sec", c.delayed_10sec},
            {"deliveriesStuck", static_cast<int64_t>(view.router().stuck_deliveries())},
            {"deliveriesRedirectedToFallback", 0},
            {"linksBlocked", static_cast<int64_t>(blocked)},
            {"deliveriesIngress", c.deliveries_ingress},
            {"deliveriesEgress", c.deliveries_egress},
            {"deliveriesTransit", 0},
            {"deliveriesIngressRouteContainer", c.deliveries_ingress_route_container},
            {"deliveriesEgressRouteContainer", c.deliveries_egress_route_container}};
        for (auto& kv : ops) row.push_back(std::move(kv));
        return std::vector<json::Object>{std::move(row)};
    };
    return p;
}

}  // namespace trestle::app::entities
