// AMQP transfers: incoming messages into the core, dispositions both ways, size limits, and
// `$lwt` wills (the core's will rule, trestle/core/wills.hpp).
#include "amqp/connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include "amqp/link.hpp"

namespace trestle::amqp {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

void AmqpConnection::on_delivery(pn_delivery_t* pd) {
    pn_link_t* l = pn_delivery_link(pd);
    auto* al = static_cast<AmqpLink*>(pn_link_get_context(l));
    if (al && al->lwt) {
        if (pd == pn_link_current(l)) on_will_transfer(*al, pd);
        return;
    }
    if (!al || !al->core) {
        // The core has forgotten this link (detached, or its routed peer is gone): its
        // deliveries are nobody's any more; let Proton release them.
        if (pn_link_is_receiver(l) && pd == pn_link_current(l)) {
            if (pn_delivery_partial(pd)) return;
            pn_link_advance(l);
        }
        pn_delivery_settle(pd);
        return;
    }
    if (pn_link_is_receiver(l)) {
        // A transfer not yet read is the link's current delivery; any other event is about a
        // delivery already handed to the core.
        if (pd == pn_link_current(l)) {
            on_incoming_transfer(*al, pd);
            return;
        }
        if (pn_delivery_settled(pd)) {  // the producer settled before we did (rare)
            core::Delivery* d = al->core->find_in_flight(pd);
            core::DeliveryState s = remote_state(pd);
            pn_delivery_settle(pd);
            if (d) {
                d->handle = nullptr;
                router_.disposition(d, s, true);
            }
        }
        return;
    }
    // Sender link: the consumer updated or settled one of our unsettled deliveries. While the
    // core knows the link, each has a live core delivery, named by its tag (see deliver()).
    if (!pn_delivery_updated(pd) && !pn_delivery_settled(pd)) return;
    pn_bytes_t tag = pn_delivery_tag(pd);
    core::Delivery* d = nullptr;
    if (tag.size == sizeof d) std::memcpy(&d, tag.start, sizeof d);
    if (!d || d->handle != pd) {
        if (pn_delivery_settled(pd)) pn_delivery_settle(pd);  // sent presettled, or not ours
        return;
    }
    core::DeliveryState s = remote_state(pd);
    bool settled = pn_delivery_settled(pd);
    pn_delivery_clear(pd);
    if (settled) {
        d->handle = nullptr;
        pn_delivery_settle(pd);
    }
    router_.disposition(d, s, settled);
}

// A message past the listener's maxMessageSize detaches its link before it is buffered: the
// spec's answer, and what bounds the memory a client can make us hold.
bool AmqpConnection::too_large(AmqpLink& al, size_t pending) {
    if (!settings_.max_message_size || al.partial.size() + pending <= settings_.max_message_size)
        return false;
    core::ErrorCondition err{
        "amqp:link:message-size-exceeded",
        "a message larger than the " + std::string(policy_size_limit_ ? "policy's" : "listener's") +
            " maxMessageSize (" + std::to_string(settings_.max_message_size) + " bytes)"};
    if (policy_size_limit_) policy_->deny(core::Denial::message_size, err.description);
    logger().info("[C{}] link '{}': {}", log_id_, pn_link_name(al.pn), err.description);
    al.partial.clear();
    al.partial.shrink_to_fit();
    if (al.lwt) {
        end_will(al, false, "its link sent a message past maxMessageSize");
        al.lwt = false;  // what still arrives on it is nobody's
    }
    detach_core_link(al, &err);
    set_condition(pn_link_condition(al.pn), err);
    pn_link_close(al.pn);
    wake();
    return true;
}

// A message the policy refuses: rejected (dropped if it came settled) with `why`, and the
// producer's credit given back.
void AmqpConnection::refuse_transfer(pn_delivery_t* pd, core::ErrorCondition why) {
    if (!pn_delivery_settled(pd)) apply_state(pd, core::DeliveryState::rejected(std::move(why)));
    pn_delivery_settle(pd);
    pn_link_flow(pn_delivery_link(pd), 1);
}

void AmqpConnection::on_will_transfer(AmqpLink& al, pn_delivery_t* pd) {
    pn_link_t* l = al.pn;
    if (too_large(al, pn_delivery_pending(pd))) return;
    if (pn_delivery_partial(pd)) {
        size_t pending = pn_delivery_pending(pd);
        size_t old = al.partial.size();
        al.partial.resize(old + pending);
        ssize_t n = pn_link_recv(l, al.partial.data() + old, pending);
        al.partial.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
        return;
    }
    size_t pending = pn_delivery_pending(pd);
    size_t old = al.partial.size();
    al.partial.resize(old + pending);
    ssize_t n = pending ? pn_link_recv(l, al.partial.data() + old, pending) : 0;
    al.partial.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
    core::MessageRef msg = core::MessageRef::adopt(core::Message::copy_of(al.partial));
    al.partial.clear();
    al.partial.shrink_to_fit();
    pn_link_advance(l);
    MessageLayout layout;
    std::string err = scan_message(msg->bytes(), layout);
    if (err.empty() && layout.to.empty()) err = "a will needs a topic (properties.to)";
    if (err.empty() && policy_ && !policy_->allow_target(layout.to)) {
        // Refused now, when it is set, not when it would fire.
        core::ErrorCondition e = policy_->deny(
            core::Denial::message, "will to '" + std::string(layout.to) + "' is not allowed");
        logger().info("[C{}] will to '{}' denied by policy", log_id_, layout.to);
        return refuse_transfer(pd, std::move(e));
    }
    if (!err.empty()) {
        if (!pn_delivery_settled(pd))
            apply_state(pd, core::DeliveryState::rejected({"amqp:decode-error", err}));
    } else {
        mapping::inspect_amqp(*msg, layout, router_.now_ms());
        al.will_topic.assign(layout.to);
        al.will = std::move(msg);  // a new will replaces the previous one
        logger().debug("[C{}] will of '{}' set for '{}'", log_id_, pn_link_name(l), al.will_topic);
        core::WillRecord w;  // published by another instance if this one dies
        w.client_id = pn_link_name(l);
        w.topic = al.will_topic;
        w.message = al.will;
        router_.wills().hold(w);
        if (!pn_delivery_settled(pd)) apply_state(pd, core::DeliveryState::accepted());
    }
    pn_delivery_settle(pd);
    pn_link_flow(l, 1);  // the will can be replaced during the session
}

void AmqpConnection::end_will(AmqpLink& al, bool publish, const std::string& why) {
    if (!al.will) return;
    core::MessageRef will = std::move(al.will);
    al.will.reset();
    const char* name = pn_link_name(al.pn);
    if (!publish) {
        router_.wills().cancel(name);  // no longer held for this client anywhere
        logger().debug("[C{}] will of '{}' discarded ({})", log_id_, name, why);
        return;
    }
    // The same rule as MQTT's, with no will delay: published now.
    logger().info("[C{}] publishing the will of '{}' to '{}' ({})", log_id_, name, al.will_topic,
                  why);
    core::WillRecord w;
    w.client_id = name;
    w.topic = al.will_topic;
    w.message = std::move(will);
    router_.wills().arm(std::move(w));
}

// Whether an incoming message is read for the core's fields (retain, QoS, expiry): when the
// router or a mapping acts on them — an anonymous sender's (any topic), or one to a multicast
// address (retained messages), a Kafka-bound address (its records carry them) or an address
// MQTT subscriptions match (it becomes an MQTT message). Not for plain AMQP -> AMQP anycast,
// forwarded untouched. Decided per message: rules, routes and subscriptions change while a
// link is open.
static bool reads_messages(const AmqpLink& al) {
    if (al.anonymous) return true;
    const core::Address* a = al.core ? al.core->address() : nullptr;
    if (!a) return false;
    return (a->configured() && a->distribution() == core::Distribution::multicast) ||
           a->waypoint() || a->filter_matches() > 0;
}

void AmqpConnection::on_incoming_transfer(AmqpLink& al, pn_delivery_t* pd) {
    pn_link_t* l = al.pn;
    if (pn_delivery_aborted(pd)) {
        al.partial.clear();
        pn_delivery_settle(pd);
        pn_link_flow(l, 1);  // the aborted transfer used a credit the core never saw
        return;
    }
    if (!pn_delivery_readable(pd) && pn_delivery_partial(pd)) return;
    size_t pending = pn_delivery_pending(pd);
    if (too_large(al, pending)) return;
    if (pn_delivery_partial(pd)) {
        // Accumulate a multi-frame message; Proton's session window bounds each step.
        size_t old = al.partial.size();
        al.partial.resize(old + pending);
        ssize_t n = pn_link_recv(l, al.partial.data() + old, pending);
        al.partial.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
        return;
    }
    core::Message* m;
    if (al.partial.empty()) {
        m = core::Message::create(pending);
        ssize_t n = pending ? pn_link_recv(l, m->data(), pending) : 0;
        m->truncate(n > 0 ? static_cast<size_t>(n) : 0);
    } else {
        size_t old = al.partial.size();
        al.partial.resize(old + pending);
        ssize_t n = pending ? pn_link_recv(l, al.partial.data() + old, pending) : 0;
        al.partial.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
        m = core::Message::copy_of(al.partial);
        al.partial.clear();
        al.partial.shrink_to_fit();
    }
    core::MessageRef msg = core::MessageRef::adopt(m);
    pn_link_advance(l);
    bool settled = pn_delivery_settled(pd);

    std::string_view to;
    bool inspect = reads_messages(al);
    // The message's user-id must be the connection's user unless the policy lets it proxy.
    bool check_uid = policy_ && policy_->restricted() && !policy_->allow_user_id_proxy();
    MessageLayout layout;
    if (inspect || check_uid) {
        std::string err = scan_message(msg->bytes(), layout);
        if (!err.empty()) {
            // Cannot route what cannot be read: reject (or drop, if presettled) with the reason.
            logger().debug("[C{}] undecodable message on link: {}", log_id_, err);
            if (!settled) {
                apply_state(pd, core::DeliveryState::rejected({"amqp:decode-error", err}));
            }
            pn_delivery_settle(pd);
            pn_link_flow(l, 1);
            return;
        }
        if (check_uid && layout.has_user_id && layout.user_id != policy_->user()) {
            core::ErrorCondition e =
                policy_->deny(core::Denial::message, "user-id '" + std::string(layout.user_id) +
                                                         "' is not the connection's user '" +
                                                         policy_->user() + "' (allowUserIdProxy)");
            logger().info("[C{}] message with user-id '{}' denied by policy", log_id_,
                          layout.user_id);
            return refuse_transfer(pd, std::move(e));
        }
    }
    if (inspect) {
        to = layout.to;
        // An anonymous sender's messages each name their address: the policy's targets
        // apply to each (qdrouterd does the same).
        if (policy_ && al.anonymous && policy_->restricted() && to != policy_last_target_ &&
            !policy_->allow_target(to)) {
            core::ErrorCondition e = policy_->deny(
                core::Denial::message, "target '" + std::string(to) +
                                           "' is not allowed for user '" + policy_->user() + "'");
            logger().info("[C{}] message to '{}' denied by policy", log_id_, to);
            return refuse_transfer(pd, std::move(e));
        }
        if (policy_ && al.anonymous && to != policy_last_target_)
            policy_last_target_.assign(to);  // senders repeat them
        mapping::inspect_amqp(*msg, layout, router_.now_ms());
    }
    router_.transfer(al.core, std::move(msg), to, settled, pd);
    if (settled) pn_delivery_settle(pd);
}

}  // namespace trestle::amqp
