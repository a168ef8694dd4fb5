// A session: which messages its subscriptions take, at which QoS, and where they wait.

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>

#include "mapping/mqtt_amqp.hpp"
#include "mqtt/log.hpp"
#include "mqtt/message.hpp"
#include "mqtt/session_manager.hpp"
#include "trestle/core/topic_filter.hpp"

namespace trestle::mqtt {

// =============================================================================================
// Session

Session::Session(SessionManager& m, std::string client_id, uint64_t owner)
    : mgr_(m), client_id_(std::move(client_id)), owner_(owner) {}

Session::~Session() {
    if (replay_ && mgr_.logs_) mgr_.logs_->cancel(replay_);
    mgr_.total_queued -= pending_.size() + inflight_.size() + held_.size();
}

void Session::ensure_link() {
    if (link_) return;
    core::AttachRequest req;
    req.direction = core::Direction::outgoing;
    req.name = "mqtt-session/" + client_id_;
    req.subscriber = true;
    req.takes_responsibility = true;
    req.owner = owner_;
    core::Router& r = mgr_.router();
    r.attach(*mgr_.core_, req, *this, &link_);
    r.credit(link_, INT32_MAX / 2, false);
}

// A message routed to this session: which of its subscriptions match decides the QoS, the
// subscription identifiers and whether the retain flag is kept.
void Session::deliver(core::Delivery& d) {
    Outgoing o;
    std::string error;
    if (!prepare(d.message.get(),
                 d.address ? std::string_view(d.address->name()) : std::string_view(), d.presettled,
                 o, &error)) {
        if (!error.empty())
            d.state = core::DeliveryState::rejected({"amqp:decode-error", error});
        else
            d.state = core::DeliveryState::released();
        return;
    }
    if (!o.message) return;  // unreadable
    if (!conn_ && o.qos == 0) {
        ++mgr_.dropped_qos0;  // QoS 0 is not kept for offline sessions
        return;
    }
    // A QoS 1/2 record read from Kafka for a connected client whose queue is full: deferred,
    // not dropped. The core keeps it unsettled, so the Kafka route's credit runs out and its
    // partitions pause: Kafka holds the backlog, and nothing is lost (mosquitto's drop stays
    // for messages from MQTT publishers, whom a slow subscriber must not hold up).
    if (o.qos > 0 && conn_ && !d.presettled && d.message->origin_log && full_for(o)) {
        d.deferred = true;
        blocked_ = true;
        return;
    }
    size_t before = mgr_.dropped_queue_full;
    enqueue(std::move(o));
    if (mgr_.dropped_queue_full != before) d.state = core::DeliveryState::released();
}

bool Session::prepare(core::Message* m, std::string_view address, bool presettled, Outgoing& o,
                      std::string* error) {
    core::MessageRef mq;
    if (m->format() == core::MessageFormat::mqtt) {
        mq = core::MessageRef::share(m);
    } else {
        if (!m->converted()) {
            core::MessageRef c = mapping::mqtt_from_amqp(*m, address, mgr_.now());
            if (!c) {
                if (error) *error = "message has no topic for MQTT subscribers";
                return false;
            }
            c->origin_log = m->origin_log;  // where it was read, for the session's positions
            c->origin_partition = m->origin_partition;
            c->origin_offset = m->origin_offset;
            m->set_converted(c.get());
            c->ref();
        }
        mq = core::MessageRef::share(m->converted());
    }
    MessageView v;
    if (!view_message(*mq, v)) return true;  // no message: dropped
    uint8_t max_qos = 0;
    bool any = false, keep_retain = false;
    for (const auto& [filter, s] : subs_) {
        if (!core::topic_matches(core::filter_of(filter), v.topic)) continue;
        any = true;
        max_qos = std::max(max_qos, s.qos);
        keep_retain |= s.retain_as_published;
        if (s.subscription_id) o.subscription_ids.push_back(s.subscription_id);
    }
    if (!any) return false;
    o.qos = std::min<uint8_t>(presettled ? 0 : mq->qos, max_qos);
    o.retain = keep_retain && mq->retain;
    o.message = std::move(mq);
    return true;
}

void Session::replayed(core::MessageRef m, std::string_view address) {
    Outgoing o;
    if (!prepare(m.get(), address, false, o, nullptr) || !o.message) return;
    if (!conn_ && o.qos == 0) {
        ++mgr_.dropped_qos0;  // QoS 0 is not kept for offline sessions
        return;
    }
    enqueue(std::move(o), false);
}

void Session::replay_done() {
    replay_ = 0;
    replay_from_.clear();
    replay_from_.shrink_to_fit();
    // Live messages that arrived meanwhile follow what was caught up (they are later records).
    while (!held_.empty()) {
        pending_.push_back(std::move(held_.front()));
        held_.pop_front();
    }
    held_.trim();
    if (conn_) send_pending();
}

void Session::unacked_positions(std::map<std::pair<uint32_t, int32_t>, int64_t>& out) const {
    auto note = [&](const Outgoing& o) {
        const core::Message& m = *o.message;
        if (!m.origin_log || m.origin_offset < 0) return;
        auto [it, fresh] = out.try_emplace({m.origin_log, m.origin_partition}, m.origin_offset);
        if (!fresh) it->second = std::min(it->second, m.origin_offset);
    };
    for (const auto& o : inflight_) note(o);
    for (const auto& o : pending_) note(o);
    for (const auto& o : held_) note(o);
}

// The queue is full: make room by dropping the oldest QoS 0 message, if any.
bool Session::drop_for(OutQueue& q, const Outgoing& incoming) {
    for (auto it = q.begin(); it != q.end(); ++it)
        if (it->qos == 0) {
            q.erase(it);
            --mgr_.total_queued;
            ++mgr_.dropped_qos0;
            return true;
        }
    if (incoming.qos == 0)
        ++mgr_.dropped_qos0;
    else
        ++mgr_.dropped_queue_full;
    ++dropped_;
    return false;
}

OutQueue& Session::queue_for(bool live) {
    return replay_ && live ? held_ : pending_;
}

bool Session::at_limit(const OutQueue& q) const {
    return q.size() >= max_queue_ || mgr_.total_queued >= mgr_.max_total_queued;
}

bool Session::full_for(const Outgoing& o) {
    const OutQueue& q = queue_for(true);
    if (!at_limit(q)) return false;
    if (o.qos == 0) return true;
    for (const auto& x : q)
        if (x.qos == 0) return false;  // drop_for makes room
    return true;
}

void Session::unblock() {
    if (!blocked_ || !link_) return;
    blocked_ = false;
    mgr_.router().credit(link_, INT32_MAX / 2, false);
}

void Session::enqueue(Outgoing o, bool live) {
    OutQueue& q = queue_for(live);
    if (&q == &pending_ && conn_ && pending_.empty() && o.qos == 0 &&
        conn_->buffered() < conn_->settings().max_buffered_bytes) {
        conn_->write_publish(o, false);  // the common fast path: straight to the socket
        conn_->flush();
        return;
    }
    // The per-session bound is on messages waiting to be sent (as mosquitto's
    // max_queued_messages); those in flight are bounded by the client's receive maximum.
    if (at_limit(q)) {
        if (!drop_for(q, o)) {
            uint64_t now = mgr_.now();
            if (now >= mgr_.log_rate_ms_) {
                logger().warn(
                    "MQTT session '{}' queue full ({} queued, {} in flight): dropping "
                    "(dropped so far {})",
                    client_id_, q.size(), inflight_.size(), dropped_);
                mgr_.log_rate_ms_ = now + 10000;  // at most one such line per 10 s
            }
            return;
        }
    }
    q.push_back(std::move(o));
    ++mgr_.total_queued;
    if (conn_ && &q == &pending_) send_pending();
}

}  // namespace trestle::mqtt
