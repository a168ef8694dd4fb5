// Links (router.link): every core link with its counters and credit (qdstat -l).
#include "app/entities/entities.hpp"

namespace trestle::app::entities {

Provider link(const View& view) {
    Provider p;
    p.query = [&view] {
        std::vector<json::Object> rows;
        uint64_t now = view.router().now_ms();
        for (const auto& [id, l] : view.router().links()) {
            const auto& c = l->counters();
            bool out = l->direction() == core::Direction::outgoing;
            json::Value owning;
            if (l->address()) owning = address_key(l->address()->name());
            json::Array subs;
            for (const auto& s : l->subscriptions()) subs.emplace_back(s);
            json::Object r{
                {"identity", std::to_string(id)},
                {"name", l->name()},
                {"linkName", l->name()},
                {"linkType", "endpoint"},
                {"linkDir", out ? "out" : "in"},
                {"owningAddr", owning},
                {"capacity", static_cast<int64_t>(l->capacity())},
                {"peer", l->routed_peer() ? json::Value(std::to_string(l->routed_peer()->id()))
                                          : json::Value()},
                {"undeliveredCount", static_cast<int64_t>(l->undelivered_count())},
                {"unsettledCount", static_cast<int64_t>(l->unsettled_count())},
                {"deliveryCount", c.delivery_count},
                {"connectionId", l->connection()
                                     ? json::Value(std::to_string(l->connection()->id()))
                                     : json::Value()},
                {"adminStatus", "enabled"},
                {"operStatus", "up"},
                {"presettledCount", c.presettled},
                {"droppedPresettledCount", c.dropped_presettled},
                {"acceptedCount", c.accepted},
                {"rejectedCount", c.rejected},
                {"releasedCount", c.released},
                {"modifiedCount", c.modified},
                {"deliveriesDelayed1Sec", 0},
                {"deliveriesDelayed10Sec", 0},
                {"deliveriesStuck", 0},
                {"creditAvailable", static_cast<int64_t>(l->credit())},
                {"zeroCreditSeconds",
                 l->zero_credit_since_ms() && l->credit() <= 0
                     ? static_cast<int64_t>((now - l->zero_credit_since_ms()) / 1000)
                     : 0},
                {"settleRate", 0},
                {"priority", 4},
                {"subscriptions", std::move(subs)}};
            rows.push_back(std::move(r));
        }
        return rows;
    };
    return p;
}

}  // namespace trestle::app::entities
