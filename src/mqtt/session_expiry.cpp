#include "mqtt/session_expiry.hpp"

#include "mqtt/log.hpp"
#include "mqtt/session_manager.hpp"

namespace trestle::mqtt {

void SessionExpiry::check(uint64_t now_ms) {
    std::vector<Session*> expired;
    for (auto& [id, s] : m_.sessions_)
        if (!s->conn_ && s->expires_at_ms_ && s->expires_at_ms_ <= now_ms) expired.push_back(s);
    for (Session* s : expired) {
        logger().info("MQTT session '{}' expired", s->client_id());
        m_.will_delay_.fire_now(s->client_id());
        m_.destroy(s);
    }
}

}  // namespace trestle::mqtt
