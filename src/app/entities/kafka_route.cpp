// kafkaRoutes: configured bindings of addresses to topics, their counters and consumer lag per
// partition.
#include "app/entities/entities.hpp"

namespace trestle::app::entities {

Provider kafka_route(const View& view, Operations& ops) {
    Provider p;
    p.query = [&view] {
        std::vector<json::Object> rows;
        for (const auto& e : view.entities("kafkaRoute")) {
            json::Object r = entity_row(e);
            if (const kafka::Adapter* k = view.kafka()) {
                kafka::RouteCounters c = k->counters(e.str("name"));
                r.emplace_back("produced", c.produced);
                r.emplace_back("produceFailed", c.produce_failed);
                r.emplace_back("inFlight", c.in_flight);
                r.emplace_back("consumed", c.consumed);
                r.emplace_back("deadLettered", c.dead_lettered);
                r.emplace_back("redelivered", c.redelivered);
                json::Array parts;
                int64_t total = 0;
                bool known = false;
                for (const auto& l : k->lag(e.str("name"))) {
                    auto opt = [](int64_t v) { return v < 0 ? json::Value() : json::Value(v); };
                    parts.emplace_back(json::Array{static_cast<int64_t>(l.partition),
                                                   opt(l.committed), opt(l.position), opt(l.high),
                                                   opt(l.lag)});
                    if (l.lag >= 0) {
                        total += l.lag;
                        known = true;
                    }
                }
                r.emplace_back("partitions", std::move(parts));
                r.emplace_back("lag", known ? json::Value(total) : json::Value());
            }
            rows.push_back(std::move(r));
        }
        return rows;
    };
    runtime_entity(p, ops, "kafkaRoute");
    return p;
}

}  // namespace trestle::app::entities
