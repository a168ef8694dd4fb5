#include "mqtt/keepalive.hpp"

#include "mqtt/log.hpp"
#include "mqtt/session_manager.hpp"

namespace trestle::mqtt {

void KeepAlive::check(uint64_t now_ms) {
    std::vector<std::shared_ptr<Connection>> overdue;
    m_.for_each_connection([&](Connection& c) {
        if (c.closed_) return;
        if (!c.session_) {
            if (now_ms - c.last_packet_ms_ > c.settings().connect_timeout_ms)
                overdue.push_back(c.self_);
        } else if (c.keep_alive_ && now_ms - c.last_packet_ms_ > uint64_t(c.keep_alive_) * 1500) {
            overdue.push_back(c.self_);
        }
    });
    for (auto& c : overdue) {
        if (!c->session_) {
            logger().info("[M{}] no CONNECT from {} in time: closing", c->log_id_, c->remote());
            c->finish(false);
        } else {
            logger().info("[M{}] client '{}' silent for 1.5 x keep alive ({}s): closing",
                          c->log_id_, c->session_->client_id(), c->keep_alive_);
            c->close_with(reason::keep_alive_timeout, "Keep alive timeout", true);
        }
    }
}

}  // namespace trestle::mqtt
