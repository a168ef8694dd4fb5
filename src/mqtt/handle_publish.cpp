// PUBLISH from a client (QoS 0/1/2, topic aliases), PUBREL, and the outcome of each message
// turned into PUBACK / PUBREC with its reason code.

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>

#include "mqtt/log.hpp"
#include "mqtt/message.hpp"
#include "mqtt/publish_port.hpp"
#include "mqtt/session_manager.hpp"
#include "trestle/core/topic_filter.hpp"

namespace trestle::mqtt {

namespace asio = boost::asio;

namespace {

uint8_t outcome_reason(const core::DeliveryState& s) {
    switch (s.outcome) {
        case core::Outcome::accepted:
        case core::Outcome::none:
            return reason::success;
        case core::Outcome::released:
        case core::Outcome::modified:
            // Nobody took it: MQTT 5 says so without asking the client to resend.
            return reason::no_matching_subscribers;
        case core::Outcome::rejected: {
            std::string_view c = s.error ? std::string_view(s.error->name) : std::string_view();
            if (c == "amqp:unauthorized-access") return reason::not_authorized;
            if (c == "amqp:not-found" || c == "amqp:invalid-field")
                return reason::topic_name_invalid;
            if (c == "amqp:resource-limit-exceeded") return reason::quota_exceeded;
            if (c == "amqp:decode-error") return reason::payload_format_invalid;
            return reason::unspecified_error;
        }
    }
    return reason::unspecified_error;
}

}  // namespace

// Policy: the topic against the user's targets (the last allowed topic is remembered:
// publishers repeat topics). Counted and logged when denied.
bool Connection::publish_denied(const Publish& p) {
    if (!policy_->restricted() || p.topic == policy_last_topic_) return false;
    if (policy_->allow_target(p.topic)) {
        policy_last_topic_ = p.topic;
        return false;
    }
    policy_->deny(core::Denial::message, "publish to '" + p.topic + "'");
    logger().info("[M{}] PUBLISH to '{}' (QoS {}{}) by user '{}' denied by policy (vhost '{}')",
                  log_id_, p.topic, p.qos, p.retain ? ", retained" : "", policy_->user(),
                  policy_->vhost());
    return true;
}

bool Connection::on_publish(Publish& p) {
    if (level_ == v5 && p.properties.topic_alias) {
        uint16_t a = *p.properties.topic_alias;
        if (a == 0 || a > settings_.topic_alias_maximum)
            return protocol_error(reason::topic_alias_invalid, "topic alias out of range");
        if (!in_aliases_) in_aliases_ = std::make_unique<std::vector<std::string>>();
        auto& aliases = *in_aliases_;
        if (p.topic.empty()) {
            if (a >= aliases.size() || aliases[a].empty())
                return protocol_error(reason::protocol_error, "unknown topic alias");
            p.topic = aliases[a];
        } else {
            if (aliases.size() <= a) aliases.resize(size_t(a) + 1);
            aliases[a] = p.topic;
        }
    }
    if (!core::valid_topic_name(p.topic))
        return protocol_error(reason::topic_name_invalid, "invalid topic name '" + p.topic + "'");
    if (p.properties.response_topic && !core::valid_topic_name(*p.properties.response_topic))
        return protocol_error(reason::protocol_error, "invalid response topic");
    if (p.qos > 0 && level_ == v5 && unacked_in_ >= settings_.receive_maximum)
        return protocol_error(reason::receive_maximum_exceeded,
                              "more unacknowledged QoS 1/2 publishes than the receive maximum");
    if (policy_ && publish_denied(p)) {
        // 3.1.1 has no way to refuse one publish: the connection goes (as mosquitto's ACL
        // does for QoS > 0 it cannot refuse). QoS 0 is dropped and counted.
        if (p.qos > 0 && level_ != v5)
            return protocol_error(reason::not_authorized,
                                  "publish to '" + p.topic + "' is not allowed");
        if (p.qos > 0) {
            write_ack(p.qos == 1 ? PacketType::puback : PacketType::pubrec, p.packet_id,
                      reason::not_authorized);
            flush();
        }
        return true;
    }
    if (policy_ && policy_->max_message_size() && p.payload.size() > policy_->max_message_size()) {
        policy_->deny(core::Denial::message_size, "publish to '" + p.topic + "'");
        logger().info(
            "[M{}] PUBLISH to '{}' of {} bytes by user '{}' denied: policy "
            "maxMessageSize {}",
            log_id_, p.topic, p.payload.size(), policy_->user(), policy_->max_message_size());
        if (p.qos > 0 && level_ != v5)
            return protocol_error(reason::packet_too_large, "message larger than maxMessageSize");
        if (p.qos > 0) {
            write_ack(p.qos == 1 ? PacketType::puback : PacketType::pubrec, p.packet_id,
                      reason::packet_too_large);
            flush();
        }
        return true;
    }
    auto& q2 = session_->incoming_qos2_;
    if (p.qos == 2 && std::find(q2.begin(), q2.end(), p.packet_id) != q2.end()) {
        write_ack(PacketType::pubrec, p.packet_id, 0);  // a resend we already have
        flush();
        return true;
    }
    if (p.properties.payload_format_indicator.value_or(0) == 1 && !valid_utf8(p.payload)) {
        if (p.qos == 0)
            return protocol_error(reason::payload_format_invalid, "payload is not UTF-8");
        write_ack(p.qos == 1 ? PacketType::puback : PacketType::pubrec, p.packet_id,
                  reason::payload_format_invalid);
        flush();
        return true;
    }
    uint64_t expires = 0;
    if (p.properties.message_expiry_interval)
        expires = mgr_.now() + uint64_t(*p.properties.message_expiry_interval) * 1000;
    // Keep the message's own properties; aliases, subscription ids and expiry are per hop.
    p.properties.topic_alias.reset();
    p.properties.subscription_identifiers.clear();
    p.properties.message_expiry_interval.reset();
    std::string props;
    if (level_ == v5) encode_property_bytes(p.properties, props);
    core::MessageRef msg = make_message(p.topic, props, p.payload);
    msg->retain = p.retain;
    msg->qos = p.qos;
    msg->expires_at_ms = expires;
    if (p.qos == 2) q2.push_back(p.packet_id);
    ensure_publish_link();
    if (p.qos > 0) ++unacked_in_;
    void* handle =
        p.qos > 0 ? reinterpret_cast<void*>(uintptr_t(p.packet_id) << 2 | p.qos) : nullptr;
    --publish_port_->credit;
    mgr_.router().transfer(publish_port_->link, std::move(msg), p.topic, p.qos == 0, handle);
    return true;
}

// QoS 2, second half: the client releases a message it published; PUBCOMP ends it.
bool Connection::on_pubrel(uint16_t packet_id) {
    auto& q2 = session_->incoming_qos2_;
    auto it = std::find(q2.begin(), q2.end(), packet_id);
    bool known = it != q2.end();
    if (known) q2.erase(it);
    write_ack(PacketType::pubcomp, packet_id,
              known || level_ != v5 ? reason::success : reason::packet_identifier_not_found);
    flush();
    return true;
}

// A client that only subscribes (or idles) costs no core objects: they come with its first
// PUBLISH.
void Connection::ensure_publish_link() {
    if ((publish_port_ && publish_port_->link) || !session_) return;
    core::Router& r = mgr_.router();
    if (!publish_port_) {
        publish_port_ = std::make_unique<PublishPort>(*this);
        core::ConnectionInfo info;
        info.protocol = "mqtt";
        info.host = remote();
        info.container_id = session_->client_id();
        info.listener = settings_.name;
        info.user = user_;
        info.authenticated = authenticated_;
        info.encrypted = transport_->encrypted();
        if (info.encrypted) {
            auto tls = transport_->tls_parameters();
            info.ssl_protocol = tls.protocol;
            info.ssl_cipher = tls.cipher;
            info.ssl_ssf = tls.bits;
        }
        // Room for a full receive-maximum window of QoS 1/2 plus QoS 0 in flight: a client that
        // exceeds its window is caught (and told) rather than silently stopped.
        info.link_capacity = uint32_t(settings_.receive_maximum) + 250;
        publish_port_->core = r.connection_opened(std::move(info), *this);
    }
    core::AttachRequest req;
    req.direction = core::Direction::incoming;
    req.name = "mqtt-publish/" + session_->client_id();
    req.target.has_address = false;
    req.unconfigured_distribution = core::Distribution::multicast;
    req.owner = session_->owner_;
    r.attach(*publish_port_->core, req, *publish_port_, &publish_port_->link);
}

// The router could not take the message (Kafka refused it or is unavailable, a full queue), as
// opposed to a consumer rejecting it: an MQTT 3.1.1 client must not get a PUBACK for it.
static bool not_taken(const core::DeliveryState& s) {
    if (s.outcome != core::Outcome::rejected || !s.error) return false;
    return s.error->name == core::condition::internal_error ||
           s.error->name == core::condition::resource_limit ||
           s.error->description.rfind("Kafka: ", 0) == 0;
}

void Connection::acknowledge(uint16_t id, uint8_t qos, const core::DeliveryState& s) {
    if (closed_) return;
    if (unacked_in_) --unacked_in_;
    if (level_ != v5 && not_taken(s)) {
        // MQTT 3.1.1 has no negative acknowledgement: close without one so the client
        // publishes again after reconnecting. Deferred: this runs inside a core port call.
        logger().warn("[M{}] publish {} from client '{}' failed ({}): closing without ack", log_id_,
                      id, session_ ? session_->client_id() : std::string(), s.error->description);
        closed_ = true;
        asio::post(mgr_.loop_.io(), [self = self_] {
            if (self) self->finish(true);
        });
        return;
    }
    uint8_t code = level_ == v5 ? outcome_reason(s) : 0;
    if (qos == 1) {
        write_ack(PacketType::puback, id, code);
    } else {
        write_ack(PacketType::pubrec, id, code);
        if (code >= 0x80 && session_) {
            auto& q2 = session_->incoming_qos2_;
            q2.erase(std::remove(q2.begin(), q2.end(), id), q2.end());
        }
    }
    flush();
}

}  // namespace trestle::mqtt
