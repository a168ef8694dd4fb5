#include "mqtt/will_delay.hpp"

#include "mqtt/log.hpp"
#include "mqtt/message.hpp"
#include "mqtt/session_manager.hpp"

namespace trestle::mqtt {

std::optional<core::WillRecord> WillDelay::record_of(Connection& c) {
    if (!c.will_) return std::nullopt;
    const Will& w = *c.will_;
    Properties props = w.properties;
    uint32_t delay = props.will_delay_interval.value_or(0);
    props.will_delay_interval.reset();
    uint64_t expires = 0;
    if (props.message_expiry_interval)
        expires = m_.now() + uint64_t(*props.message_expiry_interval) * 1000;
    props.message_expiry_interval.reset();
    std::string encoded;
    if (c.level_ == v5) encode_property_bytes(props, encoded);
    core::WillRecord rec;
    rec.client_id = c.session_ ? c.session_->client_id() : std::string();
    rec.topic = w.topic;
    rec.message = make_message(w.topic, encoded, w.payload);
    rec.message->retain = w.retain;
    rec.message->qos = w.qos;
    rec.message->expires_at_ms = expires;
    rec.due_ms = uint64_t(delay) * 1000;  // relative here
    return rec;
}

void WillDelay::hold(Connection& c) {
    if (auto rec = record_of(c); rec && !rec->client_id.empty()) {
        rec->message->expires_at_ms = 0;  // its expiry counts from when it is published
        m_.router().wills().hold(*rec);
    }
}

void WillDelay::arm(Connection& c) {
    auto rec = record_of(c);
    if (!rec) return;
    std::string id = rec->client_id, topic = rec->topic;
    if (m_.router().wills().arm(std::move(*rec)))
        logger().info("publishing the will of client '{}' to '{}'", id, topic);
}

void WillDelay::cancel(const std::string& client_id) {
    m_.router().wills().cancel(client_id);
}

void WillDelay::fire_now(const std::string& client_id) {
    if (auto w = m_.router().wills().fire_now(client_id))
        logger().info("publishing the will of client '{}' to '{}'", client_id, w->topic);
}

void WillDelay::publish_now(Connection& c) {
    if (auto w = record_of(c)) m_.router().wills().publish_now(*w);
}

void WillDelay::reconnected(const std::string& client_id, bool session_ends) {
    m_.router().wills().reconnected(client_id, session_ends);
}

void WillDelay::check(uint64_t now_ms) {
    for (auto& w : m_.router().wills().check(now_ms))
        logger().info("publishing the will of client '{}' to '{}'", w.client_id, w.topic);
}

}  // namespace trestle::mqtt
