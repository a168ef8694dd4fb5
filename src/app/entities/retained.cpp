// Retained messages (retained): every topic with a retained message, its QoS, size and expiry.
#include "app/entities/entities.hpp"

namespace trestle::app::entities {

Provider retained(const View& view) {
    Provider p;
    p.query = [&view] {
        std::vector<json::Object> rows;
        uint64_t now = view.router().now_ms();
        auto add = [&](std::string_view topic, const core::MessageRef& m) {
            rows.push_back(json::Object{
                {"identity", "retained/" + std::string(topic)},
                {"name", std::string(topic)},
                {"topic", std::string(topic)},
                {"qos", static_cast<int64_t>(m->qos)},
                {"size", static_cast<int64_t>(m->size())},
                {"format", m->format() == core::MessageFormat::mqtt ? "mqtt" : "amqp"},
                {"expiresInSeconds",
                 m->expires_at_ms
                     ? json::Value(static_cast<int64_t>(
                           m->expires_at_ms > now ? (m->expires_at_ms - now) / 1000 : 0))
                     : json::Value()}});
        };
        view.router().retained().match("#", add);
        return rows;
    };
    return p;
}

}  // namespace trestle::app::entities
