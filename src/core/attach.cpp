// Attach and detach: what a new link becomes (consumer or producer of an address, waypoint,
// dynamic node, subscriber, link-routed) and what its end leaves behind.

#include <algorithm>
#include <cassert>
#include <random>

#include "trestle/core/router.hpp"

namespace trestle::core {

// ---------------------------------------------------------------------------------------------
// Links

Link* Router::new_link(Connection& conn, const AttachRequest& req, LinkPort* port) {
    auto l = std::make_unique<Link>();
    l->id_ = next_link_id_++;
    l->dir_ = req.direction;
    l->name_ = req.name;
    l->terminus_address_ = req.routed_terminus().address;
    l->conn_ = &conn;
    l->port_ = port;
    l->capacity_ = conn.info_.link_capacity ? conn.info_.link_capacity : 250;
    l->presettled_only_ =
        req.direction == Direction::outgoing && req.snd_settle_mode == SenderSettleMode::settled;
    l->subscriber_ = req.subscriber;
    l->takes_responsibility_ = req.takes_responsibility;
    l->unconfigured_distribution_ = req.unconfigured_distribution;
    l->from_waypoint_ = req.direction == Direction::incoming && req.from_waypoint;
    l->owner_ = req.owner ? req.owner : (uint64_t(1) << 63) | conn.id_;
    l->zero_credit_since_ms_ = now_ms_;
    Link* raw = l.get();
    links_.emplace(raw->id_, std::move(l));
    conn.links_.push_back(raw);
    return raw;
}

AttachResult Router::attach(Connection& conn, const AttachRequest& req, LinkPort& port,
                            Link** out) {
    *out = nullptr;
    const Terminus& t = req.routed_terminus();
    AttachResult res;

    if (t.has_address && !t.dynamic && !link_routes_.empty()) {
        std::string_view a = t.address;
        if (a.substr(0, 6) == "amqp:/" && a.substr(0, 7) != "amqp://") a.remove_prefix(6);
        // Links from the route container itself are never routed back to it.
        if (const LinkRouteRule* r = find_link_route(a, req.direction);
            r && conn.info_.role != "route-container")
            return attach_link_routed(conn, req, *r, port, out);
    }

    if (req.direction == Direction::incoming) {
        Link* l;
        if (!t.has_address || t.dynamic) {
            // Anonymous relay: each message is routed by its `to`.
            l = new_link(conn, req, &port);
        } else {
            Address* a = address_for(normalize(t.address));
            if (a->distribution_ == Distribution::unavailable) {
                maybe_delete_address(a);
                return {AttachResult::Kind::refused, {condition::not_found, "Node not found"}, {}};
            }
            l = new_link(conn, req, &port);
            l->addr_ = a;
            hold(a);
            a->producers_.push_back(l);
            // Initially blocked without a drain: the sender never had credit.
            l->blocked_ = !a->has_destinations();
        }
        if (!l->blocked_) update_credit(l);
        *out = l;
        return res;
    }

    // Outgoing link (the peer receives).
    if (!req.waypoint.empty()) {
        std::string pattern = canonical_pattern(req.waypoint);
        Link* l = new_link(conn, req, &port);
        if (!waypoints_.insert(pattern, l)) {
            destroy_link(l);
            return {
                AttachResult::Kind::refused,
                {condition::invalid_field, "addresses '" + pattern + "' already have a waypoint"},
                {}};
        }
        l->waypoint_ = std::move(pattern);
        ++rules_generation_;
        rebind_waypoints();
        *out = l;
        return res;
    }
    if (req.subscriber) {
        Link* l = new_link(conn, req, &port);
        *out = l;
        return res;
    }
    if (t.has_address && !t.dynamic && has_wildcards(t.address)) {
        // An AMQP receiver with an MQTT topic filter: a subscription, not an address.
        Link* l = new_link(conn, req, &port);
        l->subscriber_ = true;
        std::string err = subscribe(l, t.address);
        if (!err.empty()) {
            destroy_link(l);
            return {AttachResult::Kind::refused, {condition::invalid_field, err}, {}};
        }
        SharedFilter sf;
        parse_shared(t.address, sf);
        if (sf.group.empty() &&
            effective_distribution(nullptr, sf.filter, nullptr) == Distribution::multicast)
            send_retained(l, sf.filter);
        *out = l;
        return res;
    }
    Address* a;
    if (t.dynamic) {
        static thread_local std::mt19937_64 rng{std::random_device{}()};
        char buf[40];
        snprintf(buf, sizeof buf, "temp.%llx%llx", static_cast<unsigned long long>(rng()),
                 static_cast<unsigned long long>(next_dynamic_++));
        a = address_for(buf);
        a->dynamic_ = true;
        a->distribution_ = Distribution::closest;
        res.dynamic_address = "amqp:/" + topo_prefix_ + buf;
    } else if (!t.has_address) {
        return {AttachResult::Kind::refused,
                {condition::invalid_field, "A receiving link needs a source address or dynamic"},
                {}};
    } else {
        a = address_for(normalize(t.address));
        if (a->distribution_ == Distribution::unavailable) {
            maybe_delete_address(a);
            return {AttachResult::Kind::refused, {condition::not_found, "Node not found"}, {}};
        }
    }
    Link* l = new_link(conn, req, &port);
    l->addr_ = a;
    hold(a);
    if (t.dynamic) l->terminus_address_ = a->name_;
    add_consumer(a, l);
    // New receivers on a multicast address get its retained message first.
    if (!a->dynamic_ && a->configured_ && a->distribution_ == Distribution::multicast)
        send_retained(l, a->name_);
    *out = l;
    return res;
}

void Router::detach(Link* l, const ErrorCondition* error) {
    if (!l || l->detached_) return;
    Link* peer = l->routed_peer_;
    if (peer) {
        peer->routed_peer_ = nullptr;
        l->routed_peer_ = nullptr;
    }
    destroy_link(l);
    if (peer) {
        // The other end of a routed link goes with it, carrying the same condition.
        if (peer->port_) peer->port_->detach(error);
        destroy_link(peer);
    }
}

void Router::destroy_link(Link* l) {
    l->detached_ = true;
    if (!l->waypoint_.empty()) {
        // Unbound first, so that what it still held is routed without it.
        waypoints_.erase(l->waypoint_);
        l->waypoint_.clear();
        ++rules_generation_;
        rebind_waypoints();
    }
    if (!l->subscriptions_.empty()) remove_subscriptions(l);
    if (l->dir_ == Direction::outgoing)
        cleanup_outgoing(l);
    else
        cleanup_incoming(l);
    // The link's own reference kept its address alive through the cleanup above (which frees
    // deliveries that may have held the only other references): dropped last.
    if (Address* a = l->addr_) {
        l->addr_ = nullptr;
        let_go(a);
    }
    auto& cl = l->conn_->links_;
    cl.erase(std::find(cl.begin(), cl.end(), l));
    links_.erase(l->id_);
}

// A consumer went away. What it never got is routed again (anycast) or counted as released
// (multicast); what it got but did not settle comes back MODIFIED with delivery-failed, as
// qdrouterd does (the consumer may have processed it).
void Router::cleanup_outgoing(Link* l) {
    if (l->addr_) remove_consumer(l->addr_, l);
    while (Delivery* d = l->undelivered_.pop_front()) {
        d->where = Delivery::Where::nowhere;
        Delivery* in = d->in;
        bool dropped = !in && d->presettled;
        free_delivery(d);
        if (in) {
            if (in->multicast)
                copy_done_for(in, DeliveryState::released());
            else
                reroute(in);
        } else if (dropped) {
            ++l->counters_.dropped_presettled;
            ++counters_.dropped_presettled;
        }
    }
    while (Delivery* d = l->in_flight_.pop_front()) {
        d->where = Delivery::Where::nowhere;
        Delivery* in = d->in;
        free_delivery(d);
        if (in) {
            if (in->multicast) {
                copy_done_for(in, DeliveryState::modified(true));
            } else {
                in->out = nullptr;
                settle_in(in, DeliveryState::modified(true));
            }
        }
    }
    l->unsettled_ = 0;
}

// A producer went away. Its messages already routed stay in flight to their consumers (they
// were handed over); their outcomes just have nobody to go back to.
void Router::cleanup_incoming(Link* l) {
    if (l->addr_) {
        auto& v = l->addr_->producers_;
        v.erase(std::find(v.begin(), v.end(), l));
    }
    while (Delivery* d = l->in_flight_.pop_front()) {
        d->where = Delivery::Where::nowhere;
        d->link = nullptr;
        d->handle = nullptr;
        if (d->out == nullptr && d->copies == 0) free_delivery(d);
    }
    l->unsettled_ = 0;
}

}  // namespace trestle::core
