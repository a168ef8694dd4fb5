// Forwarding (qdrouterd forwarder.c): a transfer finds its address, the distribution picks the
// consumers (closest, balanced, multicast), and copies wait in each consumer's queue until its
// credit lets them out.

#include <algorithm>
#include <cassert>

#include "trestle/core/router.hpp"

namespace trestle::core {

namespace {
// Under ASan a freed delivery is freed for real, not pooled, so that a pointer kept past its
// settlement (by the core or an adapter) is reported where it is used, not silently reused.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool pool_deliveries = false;
#elif defined(__has_feature)
constexpr bool pool_deliveries = !__has_feature(address_sanitizer);
#else
constexpr bool pool_deliveries = true;
#endif
}  // namespace

// ---------------------------------------------------------------------------------------------
// Deliveries

Delivery* Router::new_delivery() {
    Delivery* d;
    if (!delivery_pool_.empty()) {
        d = delivery_pool_.back();
        delivery_pool_.pop_back();
    } else {
        d = new Delivery();
    }
    if (++live_deliveries_ > peak_deliveries_) peak_deliveries_ = live_deliveries_;
    return d;
}

void Router::free_delivery(Delivery* d) {
    if (d == transfer_current_) transfer_current_freed_ = true;
    if (Address* a = d->address) {
        d->address = nullptr;
        let_go(a);
    }
    *d = Delivery{};
    --live_deliveries_;
    // Pooled up to the peak in use, so a steady window of thousands in flight (a Kafka-bound
    // stream holds two per message) allocates nothing; once nothing is in flight the pool
    // shrinks back to a small reserve.
    constexpr size_t reserve = 4096;
    if (pool_deliveries && delivery_pool_.size() < std::max(reserve, peak_deliveries_))
        delivery_pool_.push_back(d);
    else
        delete d;
    if (live_deliveries_ == 0) {
        if (delivery_pool_.size() > reserve) {
            for (size_t i = reserve; i < delivery_pool_.size(); ++i) delete delivery_pool_[i];
            delivery_pool_.resize(reserve);
            delivery_pool_.shrink_to_fit();
        }
        peak_deliveries_ = 0;
    }
}

Delivery* Router::transfer(Link* l, MessageRef message, std::string_view to, bool settled,
                           void* handle) {
    Delivery* d = new_delivery();
    d->link = l;
    d->message = std::move(message);
    d->handle = handle;
    d->presettled = settled;
    d->arrival_ms = now_ms_;
    d->where = Delivery::Where::in_flight;
    l->in_flight_.push_back(d);
    if (l->credit_ > 0) --l->credit_;  // the producer used one credit
    ++l->counters_.delivery_count;
    if (settled) {
        ++l->counters_.presettled;
        ++counters_.presettled;
    } else {
        ++l->unsettled_;
    }
    ++l->conn_->deliveries_in;
    l->conn_->last_delivery_ms = now_ms_;

    transfer_current_ = d;
    transfer_current_freed_ = false;

    if (l->link_routed_) {
        Link* peer = l->routed_peer_;
        if (!peer || peer->detached_) {
            no_route(d);
        } else {
            ++counters_.deliveries_ingress_route_container;
            forward_to(d, peer);
        }
    } else {
        ++counters_.deliveries_ingress;
        Address* a = l->addr_;
        std::string_view topic = a ? std::string_view(a->name_) : normalize(to);
        if (!a && !topic.empty()) a = find_address(topic);
        Message& m = *d->message;
        // What comes out of a waypoint was stored as retained when it went in.
        if (m.retain && !topic.empty() && !l->from_waypoint_) {
            if (m.empty_payload)
                retained_->erase(topic);
            else
                retained_->put(topic, d->message);
        }
        // A topic without an Address object: its waypoint and configured distribution as
        // effective_distribution() and waypoint_for() find them, from the link's cache.
        Link* waypoint = nullptr;
        Distribution dist;
        if (a) {
            waypoint = a->waypoint_;
            dist = effective_distribution(a, topic, l);
        } else if (topic.empty()) {
            dist = effective_distribution(nullptr, topic, l);
        } else {
            const Link::TopicRoute& r = resolve_topic(l, topic);
            waypoint = r.waypoint;
            dist = r.configured
                       ? *r.configured
                       : l->unconfigured_distribution_.value_or(settings_.default_distribution);
        }
        if (dist == Distribution::unavailable) {
            settle_in(d, DeliveryState::rejected(
                             {condition::not_found,
                              "Deliveries cannot be sent to an unavailable address"}));
        } else if (topic.empty()) {
            no_route(d);
        } else if (Link* w = l->from_waypoint_ ? nullptr : waypoint) {
            // Bound to a waypoint (Kafka): it is the only destination; the address's consumers
            // are fed from it.
            if (a) {
                ++a->counters_.deliveries_ingress;
                d->address = a;
                hold(a);
            }
            forward_to(d, w);
        } else if (a && a->filter_matches_ == 0) {
            // The common AMQP case: the address's own consumers, no subscriptions involved.
            if (a->consumers_.empty()) {
                no_route(d);
            } else {
                ++a->counters_.deliveries_ingress;
                d->address = a;
                hold(a);
                route_to(d, dist, a->consumers_, a->next_);
            }
        } else if (!collect(a, topic, l->owner_, scratch_)) {
            no_route(d);
        } else {
            if (a) {
                ++a->counters_.deliveries_ingress;
                d->address = a;
                hold(a);
            }
            route_to(d, dist, scratch_, a ? a->next_ : transient_next_);
        }
    }

    bool freed = transfer_current_freed_;
    transfer_current_ = nullptr;
    return freed ? nullptr : d;
}

// No destination: an unsettled message comes back RELEASED; a presettled one is dropped and
// counted (the sender gave up any claim to it).
void Router::no_route(Delivery* in) {
    if (in->presettled) {
        if (in->link) ++in->link->counters_.dropped_presettled;
        ++counters_.dropped_presettled;
        release_in(in);
    } else {
        settle_in(in, DeliveryState::released());
    }
}

void Router::route_to(Delivery* in, Distribution dist, const Candidates& cs, size_t& next) {
    switch (dist) {
        case Distribution::multicast: {
            in->multicast = true;
            const bool settled = in->presettled;
            // pump() may complete `in`, and the candidate list may be the scratch vector:
            // snapshot it, then enqueue every copy before sending any, so the fan-out count is
            // final before an outcome can arrive.
            size_t n = cs.size();
            Link* stack_buf[16];
            std::vector<Link*> heap_buf;
            Link** targets = stack_buf;
            if (n > 16) {
                heap_buf.assign(cs.begin(), cs.end());
                targets = heap_buf.data();
            } else {
                std::copy(cs.begin(), cs.end(), stack_buf);
            }
            for (size_t i = 0; i < n; ++i) {
                Link* c = targets[i];
                Delivery* copy = new_delivery();
                copy->message = in->message;
                if ((copy->address = in->address)) hold(copy->address);
                copy->presettled = settled || c->presettled_only_;
                if (!settled) {
                    copy->in = in;
                    ++in->copies;
                }
                enqueue(c, copy);
            }
            // Presettled: nothing waits for the copies, so the producer's credit comes back now;
            // slow consumers shed the oldest presettled copies instead (enqueue()).
            if (settled) release_in(in);
            for (size_t i = 0; i < n; ++i) pump(targets[i]);
            break;
        }
        case Distribution::closest:
            forward_to(in, pick_closest(cs, next));
            break;
        case Distribution::balanced:
        case Distribution::unavailable:
            forward_to(in, pick_balanced(cs, next));
            break;
    }
}

// The consumers of a topic: the address's own links plus every subscription whose filter
// matches (one member of each shared group), each link once.
bool Router::collect(Address* a, std::string_view topic, uint64_t origin_owner, Candidates& out) {
    out.clear();
    if (a) out.insert(out.end(), a->consumers_.begin(), a->consumers_.end());
    if (filters_.size() && (!a || a->filter_matches_ > 0)) {
        filters_.match(topic, [&](const FilterEntry& e) {
            Link* l = e.link;
            if (e.group) {
                auto& ms = e.group->members;
                if (ms.empty()) return;
                l = ms[e.group->next++ % ms.size()];
            } else if (e.no_local && l->owner_ == origin_owner) {
                return;
            }
            if (std::find(out.begin(), out.end(), l) == out.end()) out.push_back(l);
        });
    }
    return !out.empty();
}

// Strict round-robin over the consumers, without looking at their queues.
Link* Router::pick_closest(const Candidates& cs, size_t& next) {
    if (next >= cs.size()) next = 0;
    return cs[next++];
}

// The consumer with the fewest undelivered + unsettled deliveries among those below their
// capacity; if all are at capacity, the least loaded anyway (buffer, never drop). An idle
// consumer found first wins at once and the start rotates, so light load is round-robin.
Link* Router::pick_balanced(const Candidates& cs, size_t& next) {
    size_t n = cs.size();
    if (next >= n) next = 0;
    Link* best_eligible = nullptr;
    size_t best_eligible_v = SIZE_MAX;
    Link* best_any = nullptr;
    size_t best_any_v = SIZE_MAX;
    for (size_t k = 0; k < n; ++k) {
        size_t i = (next + k) % n;
        Link* c = cs[i];
        size_t v = c->undelivered_.size() + c->unsettled_;
        if (v == 0) {
            next = (i + 1) % n;
            return c;
        }
        if (v < c->capacity_ && v < best_eligible_v) {
            best_eligible = c;
            best_eligible_v = v;
        }
        if (v < best_any_v) {
            best_any = c;
            best_any_v = v;
        }
    }
    return best_eligible ? best_eligible : best_any;
}

void Router::forward_to(Delivery* in, Link* out) {
    Delivery* copy = new_delivery();
    copy->message = in->message;
    if ((copy->address = in->address)) hold(copy->address);
    copy->presettled = in->presettled || out->presettled_only_;
    // Even a presettled delivery stays held until its copy leaves the router: anycast
    // producers are paced by their consumer instead of losing messages to a full queue.
    copy->in = in;
    in->out = copy;
    in->copies = 1;
    enqueue(out, copy);
    pump(out);
}

void Router::enqueue(Link* out, Delivery* d) {
    if (d->presettled && !d->in && out->undelivered_.size() >= out->capacity_)
        drop_oldest_presettled(out);
    d->link = out;
    d->where = Delivery::Where::undelivered;
    out->undelivered_.push_back(d);
}

// Slow-consumer protection for multicast (qdrouterd): with the queue at capacity, the oldest
// presettled copy nobody waits for is discarded and counted.
void Router::drop_oldest_presettled(Link* out) {
    for (Delivery* d = out->undelivered_.front(); d; d = d->next) {
        if (d->presettled && !d->in) {
            out->undelivered_.remove(d);
            ++out->counters_.dropped_presettled;
            ++counters_.dropped_presettled;
            if (out->addr_) ++out->addr_->counters_.dropped_presettled;
            free_delivery(d);
            return;
        }
    }
}

void Router::pump(Link* out) {
    if (!out->port_ || out->detached_ || out->peer_pending_) return;
    while (out->credit_ > 0 && !out->undelivered_.empty()) {
        Delivery* d = out->undelivered_.pop_front();
        --out->credit_;
        ++out->counters_.delivery_count;
        ++out->conn_->deliveries_out;
        out->conn_->last_delivery_ms = now_ms_;
        if (out->link_routed_) {
            ++counters_.deliveries_egress_route_container;
        } else {
            ++counters_.deliveries_egress;
            if (out->addr_) ++out->addr_->counters_.deliveries_egress;
        }
        if (d->presettled || out->takes_responsibility_) {
            d->where = Delivery::Where::nowhere;
            DeliveryState outcome = DeliveryState::accepted();
            if (d->presettled) {
                ++out->counters_.presettled;
                out->port_->deliver(*d);
            } else {
                // The consumer takes the message over now (an MQTT session queues it): that is
                // its outcome, unless it reported another one (e.g. released when full).
                d->state = {};
                out->port_->deliver(*d);
                if (d->deferred) {
                    // Not now (its queue is full): it stays first in line, still unsettled, so
                    // its producer's capacity stays used (a Kafka route pauses its partitions).
                    d->deferred = false;
                    d->where = Delivery::Where::undelivered;
                    out->undelivered_.push_front(d);
                    out->credit_ = 0;
                    --out->counters_.delivery_count;
                    --out->conn_->deliveries_out;
                    if (out->link_routed_) {
                        --counters_.deliveries_egress_route_container;
                    } else {
                        --counters_.deliveries_egress;
                        if (out->addr_) --out->addr_->counters_.deliveries_egress;
                    }
                    break;
                }
                if (d->state.terminal()) outcome = d->state;
                count_outcome(out, outcome);
            }
            Delivery* in = d->in;
            free_delivery(d);
            if (in) {
                // Sent settled or taken over: for the waiting producer that is the outcome.
                if (in->multicast)
                    copy_done_for(in, outcome);
                else {
                    in->out = nullptr;
                    in->copies = 0;
                    if (in->presettled)
                        release_in(in);
                    else
                        settle_in(in, outcome);
                }
            }
        } else {
            d->where = Delivery::Where::in_flight;
            out->in_flight_.push_back(d);
            ++out->unsettled_;
            out->port_->deliver(*d);
        }
    }
    if (out->credit_ == 0) {
        if (out->zero_credit_since_ms_ == 0) out->zero_credit_since_ms_ = now_ms_;
    } else {
        out->zero_credit_since_ms_ = 0;
    }
    if (out->drain_ && out->undelivered_.empty() && out->credit_ > 0) {
        // A routed link drains only once the producer side has drained.
        if (!out->link_routed_ || out->peer_drained_) {
            out->credit_ = 0;
            out->drain_ = false;
            out->peer_drained_ = false;
            out->port_->drained();
        }
    }
    if (out->link_routed_ && out->routed_peer_) update_credit(out->routed_peer_);
}

}  // namespace trestle::core
