// CONNECT: checks, the CONNACK, and the session it attaches to (new, resumed or taken over).

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>

#include <random>
#include "mqtt/log.hpp"
#include "mqtt/session_manager.hpp"
#include "security/log.hpp"

namespace trestle::mqtt {

namespace asio = boost::asio;

namespace {

spdlog::logger& security_logger() {
    return security::logger();
}

std::string generated_client_id() {
    static std::mt19937_64 rng{std::random_device{}()};
    char buf[40];
    snprintf(buf, sizeof buf, "trestle-%016llx", static_cast<unsigned long long>(rng()));
    return buf;
}

}  // namespace

bool Connection::authenticate(const Connect& c, uint8_t& v5code, uint8_t& v3code,
                              std::string& why) {
    v5code = reason::not_authorized;
    v3code = 0x05;
    if (settings_.use_identity_as_username) {
        user_ = transport_->peer_identity(settings_.tls ? settings_.tls->settings().uid_format
                                                        : std::string());
        authenticated_ = !user_.empty();
        if (!authenticated_) why = "no client certificate identity";
        return authenticated_;
    }
    if (c.username) {
        user_ = *c.username;
        if (!settings_.users) {
            // No user store: a name is taken as given, as mosquitto does without a password file.
            if (settings_.allow_anonymous) return true;
            why = "no user store to check credentials";
            return false;
        }
        if (settings_.users->verify(*c.username, c.password.value_or(""))) {
            authenticated_ = true;
            return true;
        }
        v5code = reason::bad_username_or_password;
        v3code = 0x04;
        why = "bad user name or password (user '" + *c.username + "')";
        return false;
    }
    if (settings_.allow_anonymous) return true;
    why = "anonymous clients are not allowed";
    return false;
}

bool Connection::on_connect(const Connect& c) {
    level_ = c.level;
    Connack ack;
    auto refuse = [&](uint8_t v5code, uint8_t v3code, const std::string& why) {
        ack.code = level_ == v5 ? v5code : v3code;
        encode_connack(ack, level_, out_);
        logger().info("[M{}] CONNECT from {} (client '{}') refused: {}", log_id_, remote(),
                      c.client_id, why);
        closed_ = true;
        flush_then_finish(false);
        return false;
    };
    if ((level_ == v311 && !settings_.allow_v311) || (level_ == v5 && !settings_.allow_v5))
        return refuse(reason::unsupported_protocol_version, 0x01, "protocol version not enabled");
    {
        uint8_t v5code, v3code;
        std::string why;
        if (!authenticate(c, v5code, v3code, why)) {
            // Counted and logged (never the password), and answered after a delay that holds
            // only this connection: a password guesser gets one try per delay per connection.
            ++mgr_.auth_failures;
            security_logger().warn("MQTT CONNECT from {} (client '{}') refused: {}", remote(),
                                   c.client_id, why);
            closed_ = true;
            transport_->set_reading(false);
            ack.code = level_ == v5 ? v5code : v3code;
            auth_delay_ = std::make_unique<asio::steady_timer>(
                mgr_.loop().io(), std::chrono::milliseconds(settings_.auth_failure_delay_ms));
            auth_delay_->async_wait([this, ack](boost::system::error_code ec) {
                if (ec) return;  // the connection went first
                encode_connack(ack, level_, out_);
                flush_then_finish(false);
            });
            return false;
        }
    }
    if (settings_.max_connections &&
        mgr_.connections_on(settings_.name) >= settings_.max_connections)
        return refuse(reason::quota_exceeded, 0x03, "listener connection limit reached");
    if (c.properties.authentication_method)
        return refuse(reason::bad_authentication_method, 0x05,
                      "enhanced authentication is not supported");
    std::string client_id = c.client_id;
    bool assigned = false;
    if (client_id.empty()) {
        if (level_ == v311 && !c.clean_start)
            return refuse(reason::client_identifier_not_valid, 0x02,
                          "empty client id without clean session");
        client_id = generated_client_id();
        assigned = true;
    }
    if (c.will) {
        if (!core::valid_topic_name(c.will->topic))
            return refuse(reason::topic_name_invalid, 0x05, "invalid will topic");
        if (c.will->properties.payload_format_indicator.value_or(0) == 1 &&
            !valid_utf8(c.will->payload))
            return refuse(reason::payload_format_invalid, 0x05, "will payload is not UTF-8");
    }
    if (core::Policy& pol = mgr_.router().policy(); pol.configured()) {
        core::Admission adm =
            pol.admit(user_, core::policy_host_of(remote()), settings_.policy_vhost);
        if (adm.refused) {
            security_logger().warn(
                "MQTT CONNECT from {} (client '{}', user '{}') refused by "
                "policy: {}",
                remote(), c.client_id, user_, adm.error.description);
            return refuse(adm.limit ? reason::quota_exceeded : reason::not_authorized,
                          adm.limit ? 0x03 : 0x05, adm.error.description);
        }
        policy_ = std::move(adm.ticket);
        // A will to a topic the user may not publish to is refused now, not when it fires.
        if (c.will && !policy_->allow_target(c.will->topic)) {
            policy_->deny(core::Denial::message, "will to '" + c.will->topic + "'");
            security_logger().warn(
                "MQTT CONNECT from {} (client '{}', user '{}') refused by "
                "policy: will topic '{}' is not an allowed target",
                remote(), c.client_id, user_, c.will->topic);
            return refuse(reason::not_authorized, 0x05,
                          "will topic '" + c.will->topic + "' is not allowed");
        }
    }
    keep_alive_ = c.keep_alive;
    // 3.1.1 clients announce no receive maximum: the listener's bounds what is in flight.
    client_receive_max_ = settings_.receive_maximum;
    if (level_ == v5) {
        client_receive_max_ = c.properties.receive_maximum.value_or(65535);
        client_max_packet_ = c.properties.maximum_packet_size.value_or(0);
        client_alias_max_ = c.properties.topic_alias_maximum.value_or(0);
        problem_info_ = c.properties.request_problem_information.value_or(1) == 1;
        if (settings_.max_keep_alive &&
            (keep_alive_ == 0 || keep_alive_ > settings_.max_keep_alive)) {
            keep_alive_ = settings_.max_keep_alive;
            ack.properties.server_keep_alive = keep_alive_;
        }
    }
    uint32_t expiry;
    if (level_ == v5) {
        expiry = c.properties.session_expiry_interval.value_or(0);
        if (expiry > settings_.max_session_expiry) {
            expiry = settings_.max_session_expiry;
            ack.properties.session_expiry_interval = expiry;
        }
    } else {
        expiry = c.clean_start ? 0 : settings_.max_session_expiry;
    }
    if (c.will) will_ = std::make_unique<Will>(*c.will);
    Connect effective = c;
    effective.client_id = client_id;
    bool present = false;
    session_ = mgr_.attach(*this, effective, expiry, present);
    if (will_) mgr_.will_delay_.hold(*this);

    ack.session_present = present;
    if (level_ == v5) {
        ack.properties.receive_maximum = settings_.receive_maximum;
        ack.properties.maximum_packet_size = settings_.max_packet_size;
        ack.properties.topic_alias_maximum = settings_.topic_alias_maximum;
        if (assigned) ack.properties.assigned_client_identifier = client_id;
    }
    encode_connack(ack, level_, out_);
    connack_sent_ = true;
    logger().info("[M{}] MQTT {} connection from {} opened (client '{}'{}, keep alive {}s{}{}{}{})",
                  log_id_, level_ == v5 ? "5" : "3.1.1", remote(), client_id,
                  c.clean_start ? ", clean start" : "", keep_alive_,
                  present ? ", session present" : "",
                  user_.empty()    ? ""
                  : authenticated_ ? ", user '"
                                   : ", unauthenticated user '",
                  user_, user_.empty() ? "" : "'");
    session_->resend_inflight();
    session_->send_pending();
    flush();
    return true;
}

Session* SessionManager::attach(Connection& c, const Connect& pkt, uint32_t expiry, bool& present) {
    const std::string& id = pkt.client_id;
    auto it = sessions_.find(id);
    Session* s = it == sessions_.end() ? nullptr : it->second;
    if (s && s->conn_) {
        // Takeover: the old connection goes; its will follows the will-delay rules (a
        // continuing session with a delay suppresses it).
        Connection* old = s->conn_;
        s->conn_ = nullptr;
        old->session_ = nullptr;
        if (old->will_) {
            uint32_t delay = old->will_->properties.will_delay_interval.value_or(0);
            if (pkt.clean_start || delay == 0) will_delay_.publish_now(*old);
            old->will_.reset();
        }
        logger().info("[M{}] client '{}' taken over by a new connection", old->log_id_, id);
        old->close_with(reason::session_taken_over, "Session taken over", false);
    }
    // A will waiting for its delay: the client is back. Published now only if the session ends.
    will_delay_.reconnected(id, pkt.clean_start || !s);
    if (s && pkt.clean_start) {
        destroy(s);
        s = nullptr;
    }
    if (!s) {
        // Held elsewhere (another instance, or this one before a restart)?
        if (auto rec = store_->load(id)) {
            bool expired = rec->disconnected_at_ms && rec->expiry_interval != never &&
                           rec->disconnected_at_ms + uint64_t(rec->expiry_interval) * 1000 <= now();
            if (pkt.clean_start || expired) {
                core::SessionRecord taken;  // taken here (its old holder lets it go), then ended
                taken.client_id = id;
                store_->save(taken);
            } else
                s = resume(id, *rec);
        }
    }
    present = s != nullptr;
    if (!s) {
        s = new Session(*this, id, next_owner_++);
        sessions_.emplace(s->client_id(), s);  // the key views the session's own string
    }
    s->conn_ = &c;
    s->level_ = pkt.level;
    s->expiry_interval_ = expiry;
    s->expires_at_ms_ = 0;
    s->max_queue_ = c.settings().max_session_queue;
    save(*s);
    return s;
}

}  // namespace trestle::mqtt
