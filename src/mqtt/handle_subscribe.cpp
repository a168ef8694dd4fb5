// SUBSCRIBE and UNSUBSCRIBE, with the retained messages a new subscription receives.

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>

#include "mapping/mqtt_amqp.hpp"
#include "mqtt/log.hpp"
#include "mqtt/session_manager.hpp"
#include "trestle/core/topic_filter.hpp"

namespace trestle::mqtt {

bool Connection::on_subscribe(const Subscribe& s) {
    Suback ack;
    ack.packet_id = s.packet_id;
    std::vector<std::pair<core::StoredSubscription, std::string>> retained;
    uint32_t sub_id = s.properties.subscription_identifiers.empty()
                          ? 0
                          : s.properties.subscription_identifiers[0];
    for (const auto& r : s.subscriptions) {
        core::SharedFilter sf;
        bool ok = core::parse_shared(r.filter, sf) && core::valid_topic_filter(sf.filter);
        if (!ok) {
            ack.codes.push_back(level_ == v5 ? reason::topic_filter_invalid : 0x80);
            continue;
        }
        if (!sf.group.empty() && r.no_local)
            return protocol_error(reason::protocol_error, "no local on a shared subscription");
        if (policy_ && !policy_->allow_filter(r.filter)) {
            policy_->deny(core::Denial::subscription, "subscribe to '" + r.filter + "'");
            logger().info("[M{}] SUBSCRIBE '{}' by user '{}' denied by policy (vhost '{}')",
                          log_id_, r.filter, policy_->user(), policy_->vhost());
            ack.codes.push_back(level_ == v5 ? reason::not_authorized : 0x80);
            continue;
        }
        bool existed = session_->subs_.count(r.filter) > 0;
        core::StoredSubscription st{r.filter,          r.qos, r.no_local, r.retain_as_published,
                                    r.retain_handling, sub_id};
        session_->ensure_link();
        std::string err = mgr_.router().subscribe(session_->link_, r.filter, r.no_local);
        if (!err.empty()) {
            ack.codes.push_back(level_ == v5 ? reason::topic_filter_invalid : 0x80);
            continue;
        }
        session_->subs_[r.filter] = st;
        ack.codes.push_back(r.qos);
        if (sf.group.empty() && (r.retain_handling == 0 || (r.retain_handling == 1 && !existed)))
            retained.emplace_back(st, sf.filter);
    }
    encode_suback(ack, level_, out_);
    for (const auto& [st, filter] : retained) send_retained(st, filter);
    mgr_.save(*session_);
    flush();
    return true;
}

// Retained messages for a new subscription, flagged retained, with its identifier.
void Connection::send_retained(const core::StoredSubscription& st, const std::string& filter) {
    uint64_t now = mgr_.now();
    mgr_.router().retained().match(filter, [&](std::string_view topic, const core::MessageRef& m) {
        if (m->expires_at_ms && m->expires_at_ms <= now) return;
        core::MessageRef mq = m;
        if (m->format() != core::MessageFormat::mqtt) {
            mq = mapping::mqtt_from_amqp(*m, topic, now);
            if (!mq) return;
        }
        Session::Outgoing o;
        o.message = mq;
        o.qos = std::min(m->qos, st.qos);
        o.retain = true;
        if (st.subscription_id) o.subscription_ids.push_back(st.subscription_id);
        session_->enqueue(std::move(o));
    });
}

bool Connection::on_unsubscribe(const Unsubscribe& u) {
    Unsuback ack;
    ack.packet_id = u.packet_id;
    for (const auto& f : u.filters) {
        bool existed = session_->subs_.erase(f) > 0;
        if (session_->link_) mgr_.router().unsubscribe(session_->link_, f);
        ack.codes.push_back(existed ? reason::success : reason::no_subscription_existed);
    }
    encode_unsuback(ack, level_, out_);
    mgr_.save(*session_);
    flush();
    return true;
}

}  // namespace trestle::mqtt
